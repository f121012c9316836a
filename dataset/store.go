package dataset

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Store keeps datasets, collections, data, vectors and the training queue.
// It is the source of truth: every method that changes several records
// changes them in one transaction, so a crash leaves all of a change or none
// of it. MemoryStore and BoltStore implement it.
//
// Lookups of a missing record return ErrDatasetNotFound,
// ErrCollectionNotFound or ErrDataNotFound. Returned records are copies.
type Store interface {
	PutDataset(ctx context.Context, d *Dataset) error
	Dataset(ctx context.Context, id string) (*Dataset, error)
	Datasets(ctx context.Context, teamID string) ([]*Dataset, error)
	// DeleteDataset removes the dataset and all it holds: collections, data,
	// vectors and queued items.
	DeleteDataset(ctx context.Context, id string) error

	// PutCollection stores c, failing with ErrDatasetNotFound when its
	// dataset is gone.
	PutCollection(ctx context.Context, c *Collection) error
	Collection(ctx context.Context, id string) (*Collection, error)
	Collections(ctx context.Context, datasetID string) ([]*Collection, error)
	// DeleteCollection removes the collection, its data, vectors and queued
	// items, and returns the ids of the vectors it removed.
	DeleteCollection(ctx context.Context, id string) ([]string, error)

	// Enqueue adds the items to the training queue, all in one
	// transaction, except those whose q already exists in their collection
	// (as data or as a queued item, earlier in items included): their
	// positions in items are returned as repeats. It fails with
	// ErrCollectionNotFound, adding nothing, when a collection is gone.
	Enqueue(ctx context.Context, items []*TrainingItem) (repeats []int, err error)
	// CreateCollection stores c and queues items, which must all belong to
	// c, in one transaction: a text collection exists with its chunks
	// queued, or not at all. Repeats are left out and returned as Enqueue
	// does. It fails with ErrDatasetNotFound, storing nothing, when c's
	// dataset is gone, and with ErrCollectionExists when c's id is taken.
	CreateCollection(ctx context.Context, c *Collection, items []*TrainingItem) (repeats []int, err error)
	// DueTraining returns up to n queued items, not failed, whose NextAttempt
	// is not after now, earliest first, leaving out those skip reports.
	DueTraining(ctx context.Context, now time.Time, n int, skip func(id string) bool) ([]*TrainingItem, error)
	// Complete stores what each item trained into and removes the item from
	// the queue, in one transaction. Items no longer queued are left out
	// and their ids returned. A pair whose q already exists in the
	// collection is not stored, and Complete removes it (and its vectors)
	// from its Trained, so that done tells what was stored. Each Trained's
	// Usage goes into the usage outbox in the same transaction, whether or
	// not its item is still queued: the work was done.
	Complete(ctx context.Context, done []Trained) (gone []string, err error)
	// PendingUsage returns up to n records of the usage outbox, oldest first.
	PendingUsage(ctx context.Context, n int) ([]UsageRecord, error)
	// ClearUsage removes the outbox records with these ids; unknown ids are
	// ignored.
	ClearUsage(ctx context.Context, ids []string) error
	// Reschedule stores a queued item's attempts, next attempt, last error
	// and failure. It returns errItemGone if the item is no longer queued.
	Reschedule(ctx context.Context, item *TrainingItem) error
	// TrainingCounts returns how many of a collection's items are queued
	// (failed ones excluded) and how many failed.
	TrainingCounts(ctx context.Context, collectionID string) (queued, failed int, err error)
	// TrainingFailures returns up to limit of a collection's failed items.
	TrainingFailures(ctx context.Context, collectionID string, limit int) ([]*TrainingItem, error)

	Data(ctx context.Context, id string) (*Data, error)
	// DataList returns a page of a collection's data, oldest first, and the
	// collection's total.
	DataList(ctx context.Context, collectionID string, offset, limit int) ([]*Data, int, error)
	// UpdateData replaces d (which must exist) and all its vectors with
	// vectors. It fails with ErrRepeat if d's new q belongs to other data
	// in the collection.
	UpdateData(ctx context.Context, d *Data, vectors []Vector) error
	// DeleteData removes the data item and its vectors and returns their ids.
	DeleteData(ctx context.Context, id string) ([]string, error)

	// EachVector calls fn with every stored vector and its dataset, to load
	// a VectorStore when a Service starts.
	EachVector(ctx context.Context, fn func(datasetID string, v Vector) error) error

	// TextPending returns up to n ids of data whose full-text entry must be
	// brought up to date (written or removed), each with a version.
	TextPending(ctx context.Context, n int) ([]Pending, error)
	// ClearTextPending forgets the entries whose version is unchanged; one
	// changed again since TextPending stays pending.
	ClearTextPending(ctx context.Context, done []Pending) error
}

// Trained is what one training item produced.
type Trained struct {
	ItemID  string
	Data    []*Data
	Vectors []Vector
	// Usage is what the work cost, committed with the data so that a crash
	// can neither lose it nor bill it twice: the records wait in the
	// store's usage outbox until the UsageRecorder has them.
	Usage []UsageRecord
}

// Pending is a data id whose full-text entry is stale, at a version.
type Pending struct {
	DataID  string
	Version uint64
}

// ErrCollectionExists answers CreateCollection for a collection id that is
// already stored; ids are random, so it means a caller's bug.
var ErrCollectionExists = errors.New("dataset: collection id already stored")

// checkOwnItems reports an item of CreateCollection that names another
// collection than c.
func checkOwnItems(c *Collection, items []*TrainingItem) error {
	for i, it := range items {
		if it.CollectionID != c.ID || it.DatasetID != c.DatasetID || it.TeamID != c.TeamID {
			return fmt.Errorf("dataset: CreateCollection item %d belongs to collection %q of dataset %q, not %q of %q",
				i, it.CollectionID, it.DatasetID, c.ID, c.DatasetID)
		}
	}
	return nil
}

// ErrRepeat answers an update whose q another item of the collection has.
var ErrRepeat = errRepeat{}

type errRepeat struct{}

func (errRepeat) Error() string      { return "another item of the collection has this q" }
func (errRepeat) HTTPStatus() int    { return 409 }
func (errRepeat) StatusText() string { return "conflict" }

// qKey identifies a q within a collection for repeat detection: the
// collection id and a digest of the trimmed text.
func qKey(collectionID, q string) []byte {
	sum := sha256.Sum256([]byte(strings.TrimSpace(q)))
	k := make([]byte, 0, len(collectionID)+1+16)
	k = append(k, collectionID...)
	k = append(k, 0)
	return append(k, sum[:16]...)
}

// vectorIDsOf lists the vector ids a Data item has.
func vectorIDsOf(d *Data) []string {
	ids := make([]string, 0, 1+len(d.Indexes))
	for i := 0; i <= len(d.Indexes); i++ {
		ids = append(ids, vectorID(d.ID, i))
	}
	return ids
}
