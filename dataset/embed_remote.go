package dataset

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/tmc/langchaingo/llms/ollama"
	"github.com/tmc/langchaingo/llms/openai"
)

// RemoteEmbedderConfig names an embedding endpoint.
type RemoteEmbedderConfig struct {
	BaseURL    string // e.g. https://api.openai.com/v1 or http://localhost:11434
	APIKey     string // OpenAI-compatible only
	Model      string // e.g. text-embedding-3-small, nomic-embed-text
	HTTPClient *http.Client
}

// langchainEmbedder adapts a langchaingo client, whose CreateEmbedding
// sends a batch of texts in one call.
type langchainEmbedder struct {
	create func(ctx context.Context, texts []string) ([][]float32, error)
}

func (e langchainEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	vs, err := e.create(ctx, texts)
	if err != nil {
		return nil, err
	}
	if len(vs) != len(texts) {
		return nil, fmt.Errorf("dataset: embedding endpoint returned %d vectors for %d texts", len(vs), len(texts))
	}
	return vs, nil
}

// NewOpenAIEmbedder returns an Embedder for any OpenAI-compatible
// /embeddings endpoint, through langchaingo.
func NewOpenAIEmbedder(c RemoteEmbedderConfig) (Embedder, error) {
	if c.BaseURL == "" || c.Model == "" {
		return nil, errors.New("dataset: an OpenAI-compatible embedder needs a base URL and a model")
	}
	key := c.APIKey
	if key == "" {
		key = "none" // local servers often need none; langchaingo insists on one
	}
	opts := []openai.Option{openai.WithBaseURL(c.BaseURL), openai.WithToken(key), openai.WithEmbeddingModel(c.Model)}
	if c.HTTPClient != nil {
		opts = append(opts, openai.WithHTTPClient(c.HTTPClient))
	}
	llm, err := openai.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("dataset: openai embedder: %w", err)
	}
	return langchainEmbedder{create: llm.CreateEmbedding}, nil
}

// NewOllamaEmbedder returns an Embedder for an Ollama server, through
// langchaingo.
func NewOllamaEmbedder(c RemoteEmbedderConfig) (Embedder, error) {
	if c.BaseURL == "" || c.Model == "" {
		return nil, errors.New("dataset: an Ollama embedder needs a base URL and a model")
	}
	opts := []ollama.Option{ollama.WithServerURL(c.BaseURL), ollama.WithModel(c.Model)}
	if c.HTTPClient != nil {
		opts = append(opts, ollama.WithHTTPClient(c.HTTPClient))
	}
	llm, err := ollama.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("dataset: ollama embedder: %w", err)
	}
	return langchainEmbedder{create: llm.CreateEmbedding}, nil
}
