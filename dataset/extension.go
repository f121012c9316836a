package dataset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/chatgate/chatgate/apierror"
)

// Query extension is FastGPT's "问题优化" (datasetSearchUsingExtensionQuery):
// a chat model rewrites the question into a few search queries, resolving
// what it refers to with a background text, and every query is searched.
// A question such as "who made it?" finds nothing by itself; its rewrites
// ("who directed Hero?") do. The original question is always searched
// first, so extension can add hits but never loses the ones the question
// finds alone at the top of its own list.

// MaxExtensionQueries is how many rewrites of a question are searched
// besides the question itself; a model that writes more has the rest
// dropped, which bounds what one search may embed.
const MaxExtensionQueries = 3

// QueryExtender is what query extension needs of chat models: a prompt
// answered by the model of the given name. The server adapts its chat
// models to it; dataset writes the prompt and reads the answer.
//
// model is the request's datasetSearchExtensionModel and may be empty: an
// extender with a default model answers with it, and says which in
// GenerateResult.Model. A model it cannot use (unknown, or one that cannot
// write text, as the offline extractive model cannot) is an error wrapping
// ErrExtensionModel, which the search answers with 400 naming the field;
// any other error is the model failing, answered with 502.
type QueryExtender interface {
	Complete(ctx context.Context, model, prompt string) (GenerateResult, error)
}

// QueryExtenderFunc adapts a function to a QueryExtender.
type QueryExtenderFunc func(ctx context.Context, model, prompt string) (GenerateResult, error)

// Complete calls f.
func (f QueryExtenderFunc) Complete(ctx context.Context, model, prompt string) (GenerateResult, error) {
	return f(ctx, model, prompt)
}

// ErrExtensionModel is what a QueryExtender wraps when the model asked for
// cannot extend queries; its message (after this one's) says why.
var ErrExtensionModel = errors.New("no such query extension model")

// QueryExtension asks a search to extend its query (FastGPT's
// datasetSearchUsingExtensionQuery, datasetSearchExtensionModel and
// datasetSearchExtensionBg). The zero value searches the text alone.
type QueryExtension struct {
	Use        bool
	Model      string // the chat model; "" for the extender's default
	Background string // what the conversation is about, to resolve the question

	queries []string // what is searched, the text first; set by extendQuery
}

// Extension is what a query extension did: the queries searched (the
// text first) and the chat model's usage, which Search records itself
// (Module ModuleQueryExtension) as soon as the model answered, because
// the tokens are spent whether or not the search then succeeds.
type Extension struct {
	Queries      []string
	Model        string
	InputTokens  int
	OutputTokens int
	// Fallback reports that the model's answer was not a list of queries
	// and the text was searched alone.
	Fallback bool
}

// extensionPrompt asks for the rewrites as a JSON array of strings, the
// answer FastGPT's query extension asks for too.
const extensionPrompt = `You help a search engine find passages in a knowledge base.
Rewrite the user's question into at most %d different search queries that together cover what the user wants to find.
Each query must stand on its own: replace pronouns and vague references using the background.
Write the queries in the same language as the question. If the question needs no rewriting, repeat it.
Answer with a JSON array of strings and nothing else, for example: ["first query", "second query"]

Background:
"""
%s
"""

Question:
"""
%s
"""`

// ExtensionPrompt is the prompt that asks a chat model to rewrite question
// in the light of background.
func ExtensionPrompt(question, background string) string {
	return fmt.Sprintf(extensionPrompt, MaxExtensionQueries, strings.TrimSpace(background), strings.TrimSpace(question))
}

// extendQuery runs the query extension req asks for, after the request was
// checked and its datasets found: it sets the queries the search runs and
// records the model's usage. Without extension it sets the text alone.
func (s *Service) extendQuery(ctx context.Context, req *SearchRequest, res *SearchResult) error {
	ext := &req.Extension
	ext.queries = []string{req.Text}
	if !ext.Use {
		return nil
	}
	if s.opts.Extender == nil {
		return apierror.InvalidRequest("datasetSearchUsingExtensionQuery",
			"query extension needs a chat model that can write text, and none is configured (declare one under models: or set OPENAI_BASE_URL)")
	}
	prompt := ExtensionPrompt(req.Text, ext.Background)
	gen, err := s.opts.Extender.Complete(ctx, ext.Model, prompt)
	switch {
	case errors.Is(err, ErrExtensionModel):
		return apierror.InvalidRequest("datasetSearchExtensionModel", "%v", err)
	case err != nil && ctx.Err() != nil:
		return err
	case err != nil:
		// The caller asked for extension and pays for it: searching the
		// text alone would answer something other than what was asked,
		// and hide the outage.
		return &apierror.Error{Status: http.StatusBadGateway, Code: "upstream_error",
			Message: fmt.Sprintf("query extension failed: %v", err)}
	}
	model := gen.Model
	if model == "" {
		model = ext.Model
	}
	in, out := gen.PromptTokens, gen.CompletionTokens
	if in == 0 && out == 0 {
		// The provider gave no usage: count it, even if the caller has
		// left meanwhile, since the tokens were spent.
		counting := context.WithoutCancel(ctx)
		if in, err = s.count(counting, prompt); err != nil {
			return err
		}
		if out, err = s.count(counting, gen.Text); err != nil {
			return err
		}
	}
	if in+out > 0 {
		s.recordUsage(ctx, UsageRecord{TeamID: req.TeamID, KeyID: req.KeyID, BillID: req.BillID,
			DatasetID: req.DatasetIDs[0], Module: ModuleQueryExtension, Model: model, InputTokens: in, OutputTokens: out})
	}
	rewrites, ok := parseExtension(gen.Text)
	if !ok {
		// A model that did not answer with a list still cost its tokens
		// (recorded above); the question is searched as it is.
		s.log.Warn("dataset: query extension answer is not a JSON list of strings; searching the question alone",
			"model", model, "answer", clip(gen.Text, 200))
	}
	for _, q := range rewrites {
		if len(ext.queries) > MaxExtensionQueries {
			break
		}
		if len(q) > MaxSearchTextBytes { // what a caller could not ask either
			continue
		}
		if !slices.ContainsFunc(ext.queries, func(have string) bool { return strings.EqualFold(have, q) }) {
			ext.queries = append(ext.queries, q)
		}
	}
	res.Extension = &Extension{Queries: ext.queries, Model: model, InputTokens: in, OutputTokens: out, Fallback: !ok}
	return nil
}

// parseExtension reads the queries a model wrote as a JSON array of
// strings, tolerating what models wrap it in: a Markdown code fence, a
// sentence before or after (brackets in it included), quotes escaped as
// \" (FastGPT unescapes them too). It reports false when there is no such
// array; the queries are trimmed, and empty ones dropped. Only the first
// few brackets are tried, so a runaway answer costs little.
func parseExtension(answer string) ([]string, bool) {
	const tries = 16
	for _, text := range []string{answer, strings.ReplaceAll(answer, `\"`, `"`)} {
		for i, n := strings.IndexByte(text, '['), 0; i >= 0 && n < tries; n++ {
			var qs []string
			if json.NewDecoder(strings.NewReader(text[i:])).Decode(&qs) == nil {
				out := make([]string, 0, len(qs))
				for _, q := range qs {
					if q = strings.TrimSpace(q); q != "" {
						out = append(out, q)
					}
				}
				return out, true
			}
			next := strings.IndexByte(text[i+1:], '[')
			if next < 0 {
				break
			}
			i += 1 + next
		}
	}
	return nil, false
}

// recallVectors is searchVectors over every query of the search, fused.
func (s *Service) recallVectors(ctx context.Context, req SearchRequest, sets []*Dataset, n int, res *SearchResult) ([]Hit, error) {
	return recallEach(req, n, func(r SearchRequest) ([]Hit, error) { return s.searchVectors(ctx, r, sets, n, res) })
}

// recallText is searchText over every query of the search, fused.
func (s *Service) recallText(ctx context.Context, req SearchRequest, n int) ([]Hit, error) {
	return recallEach(req, n, func(r SearchRequest) ([]Hit, error) { return s.searchText(ctx, r, n) })
}

// recallEach runs search for each query and fuses the lists by weighted
// reciprocal rank (fuse), which also merges a hit several queries found
// into one. A single query's list is returned as it is, its scores those
// of its mode.
func recallEach(req SearchRequest, n int, search func(SearchRequest) ([]Hit, error)) ([]Hit, error) {
	qs := req.Extension.queries
	if len(qs) <= 1 {
		return search(req)
	}
	lists := make([][]Hit, 0, len(qs))
	for _, q := range qs {
		r := req
		r.Text = q
		hits, err := search(r)
		if err != nil {
			return nil, err
		}
		lists = append(lists, hits)
	}
	fused := fuse(lists...)
	return fused[:min(n, len(fused))], nil
}

// clip shortens s to at most n bytes for a log line, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
