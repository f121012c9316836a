package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/cl100k"
	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/embedding"
	"github.com/chatgate/chatgate/dataset/fulltext"
	"github.com/chatgate/chatgate/dataset/rerank"
	"github.com/chatgate/chatgate/dataset/webpage"
)

// TextIndexDir is bleve's full-text index's directory in the data
// directory, with dataset.full_text: bleve.
const TextIndexDir = "fulltext.bleve"

// The full-text indexes dataset.full_text picks from.
const (
	FullTextBuiltin = "builtin" // dataset's own, in memory (the default)
	FullTextBleve   = "bleve"   // dataset/fulltext's, on disk in TextIndexDir
)

// openDataset builds the knowledge-base service on the shared database,
// with the full-text index dataset.full_text picks.
func (s *Server) openDataset(ctx context.Context, models *chat.Models, tokens *cl100k.Counter) error {
	store := s.be.datasets
	embedders, err := s.cfg.embedders()
	if err != nil {
		return err
	}
	if s.cfg.Dataset.MaxAttempts < 0 || s.cfg.Dataset.RetryBase < 0 {
		return errors.New("config: dataset.max_attempts and dataset.retry_base must not be negative")
	}
	text, err := s.openText()
	if err != nil {
		return err
	}
	opts := dataset.Options{Store: store, Embedders: embedders,
		DefaultVectorModel: s.cfg.Dataset.VectorModel, Workers: s.cfg.Dataset.Workers, Logger: s.log,
		Usage: datasetUsage{s.Billing}, Bills: s.Billing, Tokens: tokens, OnPanic: s.metrics.onPanic,
		MaxAttempts: s.cfg.Dataset.MaxAttempts, RetryBase: time.Duration(s.cfg.Dataset.RetryBase)}
	if text != nil { // not a nil *Index in the interface: nil picks the built-in index
		opts.Text = text
	}
	if opts.Reranker, opts.RerankModel, err = s.cfg.reranker(); err != nil {
		return err
	}
	if qa := s.cfg.qaGenerator(models); qa != nil {
		opts.QA = qa
	}
	if s.cfg.Dataset.QAGenerator != nil {
		opts.QA = s.cfg.Dataset.QAGenerator
	}
	if x := s.cfg.queryExtender(models); x != nil {
		opts.Extender = x
	}
	opts.QAModels = qaModels{models}
	if s.cfg.Dataset.Link.MaxBytes < 0 || s.cfg.Dataset.Link.Timeout < 0 {
		return errors.New("config: dataset.link.max_bytes and dataset.link.timeout must not be negative")
	}
	link := s.cfg.Dataset.Link
	if s.pages, err = webpage.New(webpage.Options{AllowHosts: link.AllowHosts, MaxBytes: link.MaxBytes,
		Timeout: time.Duration(link.Timeout), MaxRedirects: link.MaxRedirects}); err != nil {
		return fmt.Errorf("config: dataset.link.allow_hosts: %w", err)
	}
	s.Datasets, err = dataset.New(ctx, opts)
	return err
}

// openText opens bleve's on-disk index when dataset.full_text asks for
// it; nil means the built-in index, which dataset.New fills from the
// database before it returns: 100k chunks in about a second, searched in a
// few milliseconds where bleve takes 80-100 (BENCHMARKS.md). On shared
// storage each replica must keep an index of its own fed by the change
// feed, which the built-in one is.
//
// With the built-in index on a data directory, a bleve directory left by
// an older version (where it was the default) or another setting is
// removed: it would no longer be kept up to date, and a later switch back
// to bleve would serve it stale, where an absent one is rebuilt from the
// database.
func (s *Server) openText() (*fulltext.Index, error) {
	dir := filepath.Join(s.cfg.Server.Data, TextIndexDir)
	switch s.cfg.Dataset.FullText {
	case "", FullTextBuiltin:
		if _, err := os.Stat(dir); err == nil && !s.be.shared {
			if err := os.RemoveAll(dir); err != nil {
				s.log.Warn("dataset: cannot remove the unused bleve index; remove it before setting dataset.full_text: bleve", "dir", dir, "err", err)
			} else {
				s.log.Info("dataset: removed the bleve index the built-in full-text index replaces", "dir", dir)
			}
		}
		return nil, nil
	case FullTextBleve:
		if s.be.shared {
			return nil, errors.New("config: dataset.full_text bleve is for a data directory; on postgres each replica keeps the built-in index")
		}
		text, err := fulltext.Open(dir)
		if err != nil {
			return nil, err
		}
		s.text = text
		return text, nil
	}
	return nil, fmt.Errorf("config: dataset.full_text must be builtin or bleve, not %q", s.cfg.Dataset.FullText)
}

func (cfg *Config) embedders() (map[string]dataset.Embedder, error) {
	out := map[string]dataset.Embedder{dataset.LocalModel: dataset.LocalEmbedder{}}
	for i, ec := range cfg.Dataset.Embedders {
		field := fmt.Sprintf("dataset.embedders[%d]", i)
		if ec.Name == "" {
			return nil, fmt.Errorf("config: %s.name is required", field)
		}
		if _, dup := out[ec.Name]; dup {
			return nil, fmt.Errorf("config: %s.name %q is taken", field, ec.Name)
		}
		e, err := newEmbedder(ec.Provider, embedding.Config{BaseURL: ec.BaseURL, APIKey: ec.APIKey, Model: cmp.Or(ec.Model, ec.Name)})
		if errors.Is(err, errProvider) {
			return nil, fmt.Errorf("config: %s.provider must be openai or ollama, not %q", field, ec.Provider)
		}
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w", field, err)
		}
		out[ec.Name] = e
	}
	for name, e := range cfg.Dataset.ExtraEmbedders {
		if _, dup := out[name]; dup || name == "" {
			return nil, fmt.Errorf("config: dataset extra embedder %q: the name is empty or taken", name)
		}
		out[name] = e
	}
	if vm := cfg.Dataset.VectorModel; vm != "" && out[vm] == nil {
		return nil, fmt.Errorf("config: dataset.vector_model %q is neither local nor a declared embedder", vm)
	}
	return out, nil
}

// reranker makes the declared rerank model's client, and names it; none
// (nil) when dataset.rerank declares no model: no base_url, model or name
// (a key alone, say from a shared api_key_env, declares nothing).
func (cfg *Config) reranker() (dataset.Reranker, string, error) {
	rc := cfg.Dataset.Rerank
	if rc.BaseURL == "" && rc.Model == "" && rc.Name == "" {
		return nil, "", nil
	}
	if rc.BaseURL == "" || rc.Model == "" {
		return nil, "", errors.New("config: dataset.rerank needs base_url and model")
	}
	c, err := rerank.New(rerank.Config{BaseURL: rc.BaseURL, APIKey: rc.APIKey, Model: rc.Model})
	if err != nil {
		return nil, "", fmt.Errorf("config: dataset.rerank: %w", err)
	}
	return c, cmp.Or(rc.Name, rc.Model), nil
}

// errProvider is newEmbedder's answer for a provider it does not know.
var errProvider = errors.New("unknown embedding provider")

// newEmbedder makes a declared embedder with its provider's client.
func newEmbedder(provider string, c embedding.Config) (*embedding.Client, error) {
	switch provider {
	case "openai", "":
		return embedding.NewOpenAI(c)
	case "ollama":
		return embedding.NewOllama(c)
	}
	return nil, errProvider
}

// qaGenerator picks the QA model: the configured name, else the
// OPENAI_BASE_URL provider. The offline extractive model cannot write
// pairs, so it is never picked; nil means QA mode is unavailable.
func (cfg *Config) qaGenerator(models *chat.Models) dataset.Generator {
	name := cfg.Dataset.QAModel
	if name == "" {
		name = cfg.Dataset.QAModelCamel
	}
	if name == chat.ExtractiveModelName {
		return nil
	}
	if name == "" && cfg.OpenAIBaseURL == "" {
		return nil
	}
	m, err := models.Lookup(name)
	if err != nil {
		return nil
	}
	return &qaModel{name: name, m: m}
}

// qaModels finds a dataset's agentModel among the chat models: a declared
// one, or any name the OPENAI_BASE_URL provider answers. The offline
// extractive model cannot write pairs.
type qaModels struct{ models *chat.Models }

func (q qaModels) QAModel(name string) (dataset.Generator, bool) {
	if name == chat.ExtractiveModelName {
		return nil, false
	}
	m, err := q.models.Lookup(name)
	if err != nil {
		return nil, false
	}
	return &qaModel{name: name, m: m}, true
}

// qaModel adapts a chat model to dataset.Generator.
type qaModel struct {
	name string
	m    chat.Model
}

func (q *qaModel) Generate(ctx context.Context, prompt string) (dataset.GenerateResult, error) {
	// nil is allowed (chat.Model says so, and every shipped model honours
	// it), but a model written before that was said may not: a no-op costs
	// nothing and works with both.
	res, err := q.m.Generate(ctx, chat.ModelRequest{Model: q.name, Question: prompt,
		Messages: []chat.Message{{Role: chat.RoleUser, Content: prompt}}}, func(string) error { return nil })
	if err != nil {
		return dataset.GenerateResult{}, err
	}
	return dataset.GenerateResult{Text: res.Text, Model: q.name, PromptTokens: res.Usage.PromptTokens,
		CompletionTokens: res.Usage.CompletionTokens}, nil
}

// retriever adapts the dataset service to chat.Retriever.
type retriever struct {
	s *dataset.Service
}

func (r retriever) Retrieve(ctx context.Context, req chat.RetrieveRequest) (chat.RetrieveResult, error) {
	// An app's search limit is a count of quotes (chat.SearchSettings),
	// not FastGPT's token budget: it is MaxResults, and the budget is the
	// largest, so that the count alone decides, as it did before
	// searchTest's limit became tokens, unless the quotes are huge.
	// An app may still name a dataset deleted since; it is skipped rather
	// than failing every chat of the app.
	var ids []string
	for _, id := range req.DatasetIDs {
		_, err := r.s.Dataset(ctx, req.TeamID, id)
		switch {
		case err == nil:
			ids = append(ids, id)
		case !errors.Is(err, dataset.ErrDatasetNotFound):
			return chat.RetrieveResult{}, err
		}
	}
	if len(ids) == 0 {
		return chat.RetrieveResult{}, nil
	}
	res, err := r.s.Search(ctx, dataset.SearchRequest{TeamID: req.TeamID, KeyID: req.BillKeyID, DatasetIDs: ids,
		Text: req.Query, MaxResults: req.Limit, MaxTokens: dataset.MaxSearchTokens, Similarity: req.Similarity, Mode: req.Mode})
	if err != nil {
		return chat.RetrieveResult{}, err
	}
	out := chat.RetrieveResult{Model: res.Model, Tokens: res.Tokens, Quotes: make([]chat.Quote, len(res.Hits))}
	for i, h := range res.Hits {
		out.Quotes[i] = chat.Quote{DatasetID: h.DatasetID, CollectionID: h.CollectionID, ID: h.ID,
			Q: h.Q, A: h.A, Source: h.Source, Score: h.Score}
	}
	return out, nil
}
