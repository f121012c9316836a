// Package fulltext is a dataset.TextIndex on bleve, on disk or in memory.
// A server that keeps its knowledge bases across restarts opens one in its
// data directory and passes it as dataset.Options.Text; without one a
// Service keeps a small index of its own in memory, and a program that
// does not import this package links no bleve.
//
// bleve's CJK analyzer splits Chinese, Japanese and Korean into
// overlapping character pairs and other text into lower-cased words, so
// both match without a dictionary; results are ranked by bleve's TF-IDF.
package fulltext

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/lang/cjk"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/chatgate/chatgate/dataset"
)

// Index is a dataset.TextIndex on a bleve index. Close it when done; the
// Service it is given to does not.
type Index struct {
	idx bleve.Index
}

type doc struct {
	Text    string `json:"text"`
	Dataset string `json:"dataset"`
}

func textMapping() *mapping.IndexMappingImpl {
	m := bleve.NewIndexMapping()
	m.DefaultAnalyzer = cjk.AnalyzerName
	d := bleve.NewDocumentStaticMapping()
	text := bleve.NewTextFieldMapping()
	text.Analyzer = cjk.AnalyzerName
	text.Store, text.IncludeInAll, text.IncludeTermVectors = false, false, false
	ds := bleve.NewKeywordFieldMapping()
	ds.Analyzer = keyword.Name
	ds.Store, ds.IncludeInAll, ds.IncludeTermVectors = false, false, false
	d.AddFieldMappingsAt("text", text)
	d.AddFieldMappingsAt("dataset", ds)
	m.DefaultMapping = d
	m.StoreDynamic, m.IndexDynamic = false, false
	return m
}

// Open opens the index at dir, creating it if missing; an empty dir keeps
// the index in memory. On disk, each batch returns only once it is
// persisted.
func Open(dir string) (*Index, error) {
	if dir == "" {
		idx, err := bleve.NewMemOnly(textMapping())
		if err != nil {
			return nil, fmt.Errorf("dataset: full-text index: %w", err)
		}
		return &Index{idx: idx}, nil
	}
	idx, err := bleve.Open(dir)
	if errors.Is(err, bleve.ErrorIndexPathDoesNotExist) {
		// bleve creates dir itself, but not its parents
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return nil, fmt.Errorf("dataset: full-text index: %w", err)
		}
		idx, err = bleve.New(dir, textMapping())
	}
	if err != nil {
		return nil, fmt.Errorf("dataset: full-text index at %s: %w", dir, err)
	}
	return &Index{idx: idx}, nil
}

// Index implements dataset.TextIndex.
func (b *Index) Index(ctx context.Context, docs []dataset.TextDoc) error {
	if len(docs) == 0 {
		return nil
	}
	batch := b.idx.NewBatch()
	for _, d := range docs {
		if err := batch.Index(d.ID, doc{Text: d.Text, Dataset: d.DatasetID}); err != nil {
			return fmt.Errorf("dataset: full-text index %s: %w", d.ID, err)
		}
	}
	return b.idx.Batch(batch)
}

// Delete implements dataset.TextIndex.
func (b *Index) Delete(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	batch := b.idx.NewBatch()
	for _, id := range ids {
		batch.Delete(id)
	}
	return b.idx.Batch(batch)
}

// Search implements dataset.TextIndex.
func (b *Index) Search(ctx context.Context, datasetIDs []string, text string, n int) ([]dataset.Hit, error) {
	if n <= 0 || len(datasetIDs) == 0 {
		return nil, nil
	}
	match := bleve.NewMatchQuery(text)
	match.SetField("text")
	match.Analyzer = cjk.AnalyzerName
	in := make([]query.Query, len(datasetIDs))
	for i, id := range datasetIDs {
		t := bleve.NewTermQuery(id)
		t.SetField("dataset")
		in[i] = t
	}
	q := bleve.NewConjunctionQuery(match, bleve.NewDisjunctionQuery(in...))
	res, err := b.idx.SearchInContext(ctx, bleve.NewSearchRequestOptions(q, n, 0, false))
	if err != nil {
		return nil, fmt.Errorf("dataset: full-text search: %w", err)
	}
	hits := make([]dataset.Hit, len(res.Hits))
	for i, h := range res.Hits {
		hits[i] = dataset.Hit{ID: h.ID, Score: h.Score}
	}
	return hits, nil
}

// Empty implements dataset.TextIndex.
func (b *Index) Empty() (bool, error) {
	n, err := b.idx.DocCount()
	return n == 0, err
}

// Close closes the index.
func (b *Index) Close() error { return b.idx.Close() }
