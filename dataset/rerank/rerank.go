// Package rerank is a client of Jina/Cohere-compatible rerank endpoints:
// POST {BaseURL}/rerank with {model, query, documents, top_n}, answered
// {results: [{index, relevance_score}], usage?: {total_tokens}}. Jina,
// Cohere, Voyage, SiliconFlow, Xinference and vLLM serve this shape. It
// implements dataset.Reranker with net/http alone, and needs nothing of
// dataset, so that a program without reranking links none of it.
package rerank

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
)

// Config names a rerank endpoint.
type Config struct {
	// BaseURL is the endpoint's prefix, e.g. https://api.jina.ai/v1; the
	// client posts to BaseURL + "/rerank".
	BaseURL string
	// APIKey is sent as a bearer token; empty sends no Authorization
	// header (local servers want none).
	APIKey string
	// Model is the upstream model, e.g. jina-reranker-v2-base-multilingual.
	Model string
	// HTTPClient sends the requests; http.DefaultClient when nil.
	HTTPClient *http.Client
	// MaxResponseBytes bounds an answer; 8 MiB when zero, so a broken
	// endpoint cannot make the client read without end.
	MaxResponseBytes int64
}

// Client reranks documents through a remote endpoint, one request a call.
type Client struct {
	url, key, model string
	hc              *http.Client
	maxBody         int64
}

// ErrBadResponse is wrapped by every error about an answer the endpoint
// gave that the client cannot use: a status other than 2xx, a body that is
// not the documented JSON, or a result naming a document it was not sent.
var ErrBadResponse = errors.New("rerank: bad response")

// New returns a Client of c's endpoint.
func New(c Config) (*Client, error) {
	if c.BaseURL == "" || c.Model == "" {
		return nil, errors.New("rerank: a rerank endpoint needs a base URL and a model")
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	maxBody := c.MaxResponseBytes
	if maxBody <= 0 {
		maxBody = 8 << 20
	}
	return &Client{url: strings.TrimRight(c.BaseURL, "/") + "/rerank", key: c.APIKey, model: c.Model, hc: hc, maxBody: maxBody}, nil
}

// Model returns the upstream model the client asks for.
func (c *Client) Model() string { return c.model }

type request struct {
	Model     string   `json:"model"`
	Query     string   `json:"query"`
	Documents []string `json:"documents"`
	TopN      int      `json:"top_n"`
}

type response struct {
	Results *[]struct {
		Index          *int     `json:"index"`
		RelevanceScore *float64 `json:"relevance_score"`
	} `json:"results"`
	Usage struct {
		TotalTokens int `json:"total_tokens"`
	} `json:"usage"`
}

// Rerank returns the relevance of each of docs to query, in docs' order
// (higher is more relevant), and the tokens the endpoint says it spent (0
// when it says nothing; the caller may count them itself). It asks for
// every document back (top_n is len(docs)); one the endpoint leaves out
// anyway scores -Inf, after all it scored. No docs: no request.
func (c *Client) Rerank(ctx context.Context, query string, docs []string) ([]float64, int, error) {
	if len(docs) == 0 {
		return nil, 0, nil
	}
	body, err := json.Marshal(request{Model: c.model, Query: query, Documents: docs, TopN: len(docs)})
	if err != nil {
		return nil, 0, fmt.Errorf("rerank: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, 0, fmt.Errorf("rerank: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("rerank: %s: %w", c.url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return nil, 0, fmt.Errorf("rerank: reading the answer of %s: %w", c.url, err)
	}
	if int64(len(raw)) > c.maxBody {
		return nil, 0, fmt.Errorf("%w: the answer of %s exceeds %d bytes", ErrBadResponse, c.url, c.maxBody)
	}
	if resp.StatusCode/100 != 2 {
		return nil, 0, fmt.Errorf("%w: %s answered %s: %s", ErrBadResponse, c.url, resp.Status, detail(raw))
	}
	var r response
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, 0, fmt.Errorf("%w: %s answered what is not a rerank result: %v", ErrBadResponse, c.url, err)
	}
	if r.Results == nil {
		return nil, 0, fmt.Errorf("%w: %s answered no results", ErrBadResponse, c.url)
	}
	scores := make([]float64, len(docs))
	seen := make([]bool, len(docs))
	for i := range scores {
		scores[i] = math.Inf(-1)
	}
	for i, res := range *r.Results {
		switch {
		case res.Index == nil || res.RelevanceScore == nil:
			return nil, 0, fmt.Errorf("%w: result %d lacks index or relevance_score", ErrBadResponse, i)
		case *res.Index < 0 || *res.Index >= len(docs):
			return nil, 0, fmt.Errorf("%w: result %d names document %d of %d", ErrBadResponse, i, *res.Index, len(docs))
		case seen[*res.Index]:
			return nil, 0, fmt.Errorf("%w: result %d names document %d again", ErrBadResponse, i, *res.Index)
		case math.IsNaN(*res.RelevanceScore) || math.IsInf(*res.RelevanceScore, 0):
			return nil, 0, fmt.Errorf("%w: result %d has no finite relevance_score", ErrBadResponse, i)
		}
		seen[*res.Index] = true
		scores[*res.Index] = *res.RelevanceScore
	}
	return scores, max(r.Usage.TotalTokens, 0), nil
}

// detail is the message of an error answer: Jina's detail, Cohere's
// message, OpenAI's error.message, else the start of the body.
func detail(raw []byte) string {
	var e struct {
		Detail  any    `json:"detail"`
		Message string `json:"message"`
		Error   struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil {
		switch {
		case e.Message != "":
			return e.Message
		case e.Error.Message != "":
			return e.Error.Message
		case e.Detail != nil:
			if s, ok := e.Detail.(string); ok {
				return s
			}
			b, _ := json.Marshal(e.Detail)
			return string(b)
		}
	}
	s := strings.TrimSpace(string(raw))
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "..."
	}
	return s
}
