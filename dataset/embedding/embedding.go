// Package embedding has dataset.Embedders for remote embedding endpoints,
// through langchaingo: any OpenAI-compatible /embeddings endpoint, and
// Ollama. It is apart from dataset so that a program embedding with
// dataset's LocalEmbedder, or with a client of its own, links no
// langchaingo; it needs nothing of dataset either.
package embedding

import (
	"cmp"
	"context"
	"fmt"
	"net/http"

	"github.com/tmc/langchaingo/llms/ollama"
	"github.com/tmc/langchaingo/llms/openai"
)

// Config names an embedding endpoint.
type Config struct {
	BaseURL    string // e.g. https://api.openai.com/v1 or http://localhost:11434
	APIKey     string // OpenAI-compatible only
	Model      string // e.g. text-embedding-3-small, nomic-embed-text
	HTTPClient *http.Client
}

// Client embeds texts through a remote endpoint, a batch of texts in one
// call. It implements dataset.Embedder.
type Client struct {
	llm interface {
		CreateEmbedding(ctx context.Context, texts []string) ([][]float32, error)
	}
}

// Embed returns one vector per text.
func (c *Client) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	vs, err := c.llm.CreateEmbedding(ctx, texts)
	if err != nil {
		return nil, err
	}
	if len(vs) != len(texts) {
		return nil, fmt.Errorf("dataset: embedding endpoint returned %d vectors for %d texts", len(vs), len(texts))
	}
	return vs, nil
}

// NewOpenAI returns a Client for any OpenAI-compatible /embeddings
// endpoint.
func NewOpenAI(c Config) (*Client, error) { return newClient(c, "openai") }

// NewOllama returns a Client for an Ollama server.
func NewOllama(c Config) (*Client, error) { return newClient(c, "ollama") }

// newClient returns a Client on provider's langchaingo client.
func newClient(c Config, provider string) (*Client, error) {
	if c.BaseURL == "" || c.Model == "" {
		name := map[string]string{"openai": "an OpenAI-compatible", "ollama": "an Ollama"}[provider]
		return nil, fmt.Errorf("dataset: %s embedder needs a base URL and a model", name)
	}
	cl := new(Client)
	var err error
	switch provider {
	case "openai":
		// local servers often need no key; langchaingo insists on one
		opts := []openai.Option{openai.WithBaseURL(c.BaseURL), openai.WithToken(cmp.Or(c.APIKey, "none")), openai.WithEmbeddingModel(c.Model)}
		if c.HTTPClient != nil {
			opts = append(opts, openai.WithHTTPClient(c.HTTPClient))
		}
		cl.llm, err = openai.New(opts...)
	case "ollama":
		opts := []ollama.Option{ollama.WithServerURL(c.BaseURL), ollama.WithModel(c.Model)}
		if c.HTTPClient != nil {
			opts = append(opts, ollama.WithHTTPClient(c.HTTPClient))
		}
		cl.llm, err = ollama.New(opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("dataset: %s embedder: %w", provider, err)
	}
	return cl, nil
}
