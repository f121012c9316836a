package dataset

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
)

// TextIndex is the full-text index over a Service's data. Like a
// VectorStore it is derived: the Service catches it up from its Store.
type TextIndex interface {
	// Index adds or replaces documents.
	Index(ctx context.Context, docs []TextDoc) error
	// Delete removes documents by data id; missing ids are ignored.
	Delete(ctx context.Context, ids []string) error
	// Search returns up to n data ids of the datasets matching text, best
	// first, with the engine's relevance scores.
	Search(ctx context.Context, datasetIDs []string, text string, n int) ([]Hit, error)
	// Empty reports whether the index holds no documents at all, so a
	// Service can tell a lost index from an empty knowledge base.
	Empty() (bool, error)
	Close() error
}

// TextDoc is what the full-text index holds of a Data item.
type TextDoc struct {
	ID        string
	DatasetID string
	Text      string // q, a and the index texts
}

// BleveIndex is a TextIndex on bleve with its CJK analyzer, which splits
// Chinese, Japanese and Korean into overlapping character pairs and Latin
// text into words, so both match without a dictionary.
type BleveIndex struct {
	idx bleve.Index
}

type bleveDoc struct {
	Text    string `json:"text"`
	Dataset string `json:"dataset"`
}

func textMapping() *mapping.IndexMappingImpl {
	m := bleve.NewIndexMapping()
	m.DefaultAnalyzer = cjk.AnalyzerName
	doc := bleve.NewDocumentStaticMapping()
	text := bleve.NewTextFieldMapping()
	text.Analyzer = cjk.AnalyzerName
	text.Store, text.IncludeInAll, text.IncludeTermVectors = false, false, false
	ds := bleve.NewKeywordFieldMapping()
	ds.Analyzer = keyword.Name
	ds.Store, ds.IncludeInAll, ds.IncludeTermVectors = false, false, false
	doc.AddFieldMappingsAt("text", text)
	doc.AddFieldMappingsAt("dataset", ds)
	m.DefaultMapping = doc
	m.StoreDynamic, m.IndexDynamic = false, false
	return m
}

// OpenBleveIndex opens the index at dir, creating it if missing; an empty
// dir keeps the index in memory. On disk, each batch returns only once it
// is persisted.
func OpenBleveIndex(dir string) (*BleveIndex, error) {
	if dir == "" {
		idx, err := bleve.NewMemOnly(textMapping())
		if err != nil {
			return nil, fmt.Errorf("dataset: full-text index: %w", err)
		}
		return &BleveIndex{idx: idx}, nil
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
	return &BleveIndex{idx: idx}, nil
}

// Index implements TextIndex.
func (b *BleveIndex) Index(ctx context.Context, docs []TextDoc) error {
	if len(docs) == 0 {
		return nil
	}
	batch := b.idx.NewBatch()
	for _, d := range docs {
		if err := batch.Index(d.ID, bleveDoc{Text: d.Text, Dataset: d.DatasetID}); err != nil {
			return fmt.Errorf("dataset: full-text index %s: %w", d.ID, err)
		}
	}
	return b.idx.Batch(batch)
}

// Delete implements TextIndex.
func (b *BleveIndex) Delete(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	batch := b.idx.NewBatch()
	for _, id := range ids {
		batch.Delete(id)
	}
	return b.idx.Batch(batch)
}

// Search implements TextIndex.
func (b *BleveIndex) Search(ctx context.Context, datasetIDs []string, text string, n int) ([]Hit, error) {
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
	hits := make([]Hit, len(res.Hits))
	for i, h := range res.Hits {
		hits[i] = Hit{ID: h.ID, Score: h.Score}
	}
	return hits, nil
}

// Empty implements TextIndex.
func (b *BleveIndex) Empty() (bool, error) {
	n, err := b.idx.DocCount()
	return n == 0, err
}

// Close implements TextIndex.
func (b *BleveIndex) Close() error { return b.idx.Close() }
