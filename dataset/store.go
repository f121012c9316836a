package dataset

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/chatgate/chatgate/queue"
)

// Store keeps datasets, collections, data, vectors and the training queue.
// It is the source of truth: every method that changes several records
// changes them in one transaction, so a crash leaves all of a change or none
// of it. MemoryStore and BoltStore implement it, and datasettest checks any
// implementation against what the interfaces below document.
//
// Store is the composition of small interfaces, one per consumer, so that
// a part of the Service (or a tool beside it) asks only for what it uses,
// as database/sql/driver's interfaces do. Lookups of a missing record
// return ErrDatasetNotFound, ErrCollectionNotFound or ErrDataNotFound.
// Returned records are copies.
type Store interface {
	DatasetStore
	CollectionStore
	DataStore
	TrainingQueue
	TrainingIntake
	TrainingProgress
	UsageOutbox
	TextOutbox
	VectorSource
}

// DatasetStore keeps datasets.
type DatasetStore interface {
	PutDataset(ctx context.Context, d *Dataset) error
	Dataset(ctx context.Context, id string) (*Dataset, error)
	// Datasets returns a team's datasets, oldest first.
	Datasets(ctx context.Context, teamID string) ([]*Dataset, error)
	// DeleteDataset removes the dataset and all it holds: collections, data,
	// vectors and queued items.
	DeleteDataset(ctx context.Context, id string) error
	// UpdateDataset changes a stored dataset in one transaction: fn gets
	// the dataset as stored and changes it, and the result, with the ID
	// and TeamID it had whatever fn did, is stored and returned. An error
	// of fn is returned as it is, storing nothing; fn may be called more
	// than once, so it must do nothing but change the dataset. A missing
	// dataset is ErrDatasetNotFound.
	UpdateDataset(ctx context.Context, id string, fn func(*Dataset) error) (*Dataset, error)
}

// CollectionStore keeps collections.
type CollectionStore interface {
	// PutCollection stores c, failing with ErrDatasetNotFound when its
	// dataset is gone.
	PutCollection(ctx context.Context, c *Collection) error
	Collection(ctx context.Context, id string) (*Collection, error)
	// Collections returns a dataset's collections, oldest first.
	Collections(ctx context.Context, datasetID string) ([]*Collection, error)
	// DeleteCollection removes the collection, its data, vectors and queued
	// items, and returns the ids of the vectors it removed.
	DeleteCollection(ctx context.Context, id string) ([]string, error)
	// DeleteCollections removes the collections ids, as DeleteCollection
	// removes one, all in one transaction: when one is missing it fails
	// with ErrCollectionNotFound and removes none. It returns the ids of
	// the vectors it removed by dataset id. An id given twice is removed
	// once.
	DeleteCollections(ctx context.Context, ids []string) (map[string][]string, error)
	// UpdateCollection changes a stored collection as UpdateDataset
	// changes a dataset, keeping its ID, TeamID and DatasetID. A missing
	// collection is ErrCollectionNotFound.
	UpdateCollection(ctx context.Context, id string, fn func(*Collection) error) (*Collection, error)
}

// DataStore keeps the data items training stored.
type DataStore interface {
	Data(ctx context.Context, id string) (*Data, error)
	// DataList returns a page of a collection's data, oldest first, and the
	// collection's total.
	DataList(ctx context.Context, collectionID string, offset, limit int) ([]*Data, int, error)
	// DataListMatching is DataList of the data that contain text (see
	// Data.Contains): a page of them, oldest first, and how many there are.
	DataListMatching(ctx context.Context, collectionID, text string, offset, limit int) ([]*Data, int, error)
	// UpdateData replaces d (which must exist) and all its vectors with
	// vectors. It fails with ErrRepeat if d's new q belongs to other data
	// in the collection.
	UpdateData(ctx context.Context, d *Data, vectors []Vector) error
	// DeleteData removes the data item and its vectors and returns their ids.
	DeleteData(ctx context.Context, id string) ([]string, error)
}

// DataReader is the capability of a DataStore to read several data items
// in one call: a Service whose store has it fills a search's hits with one
// read, which matters when the store is across a network.
type DataReader interface {
	// DataByID returns those of the data items ids that exist, in any order.
	DataByID(ctx context.Context, ids []string) ([]*Data, error)
}

// TrainingQueue is the training queue as the queue.Runner that trains it
// sees it. Claim returns items whose NextAttempt is due, earliest first;
// Reschedule stores a failed attempt's count, error and next attempt (a
// failed item keeps the NextAttempt it had, and its q may be pushed
// again), and returns queue.ErrGone for an item no longer queued. Items
// leave the queue with what they trained into, by Commit: the store is
// no queue.Completer.
type TrainingQueue interface {
	queue.Store[*TrainingItem]
	// Commit stores what each item trained into and removes the item from
	// the queue, in one transaction. Items no longer queued are left out
	// and their ids returned. A pair whose q already exists in the
	// collection is not stored, and Commit removes it (and its vectors)
	// from its Trained, so that done tells what was stored. Each Trained's
	// Usage goes into the usage outbox in the same transaction, whether or
	// not its item is still queued: the work was done.
	Commit(ctx context.Context, done []Trained) (gone []string, err error)
}

// TrainingIntake is how pushed items enter the training queue.
type TrainingIntake interface {
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
}

// TrainingProgress reports a collection's training.
type TrainingProgress interface {
	// TrainingCounts returns how many of a collection's items are queued
	// (failed ones excluded) and how many failed.
	TrainingCounts(ctx context.Context, collectionID string) (queued, failed int, err error)
	// TrainingFailures returns up to limit of a collection's failed items.
	TrainingFailures(ctx context.Context, collectionID string, limit int) ([]*TrainingItem, error)
}

// UsageOutbox holds the usage of committed training until the
// UsageRecorder has it; Commit fills it.
type UsageOutbox interface {
	// PendingUsage returns up to n records of the usage outbox, oldest first.
	PendingUsage(ctx context.Context, n int) ([]UsageRecord, error)
	// ClearUsage removes the outbox records with these ids; unknown ids are
	// ignored.
	ClearUsage(ctx context.Context, ids []string) error
}

// TextOutbox lists the data whose full-text entry is stale: every change
// of data marks it, in the change's transaction.
type TextOutbox interface {
	// TextPending returns up to n ids of data whose full-text entry must be
	// brought up to date (written or removed), each with a version.
	TextPending(ctx context.Context, n int) ([]Pending, error)
	// ClearTextPending forgets the entries whose version is unchanged; one
	// changed again since TextPending stays pending.
	ClearTextPending(ctx context.Context, done []Pending) error
}

// VectorSource hands out the stored vectors, to load a VectorStore when a
// Service starts.
type VectorSource interface {
	// EachVector calls fn with every stored vector and its dataset.
	EachVector(ctx context.Context, fn func(datasetID string, v Vector) error) error
}

// TextSource is the capability of a Store to hand out the full-text
// document of every data item it holds, in one read. A Service whose
// full-text index is its own, in memory and so empty at each start, fills
// it from one before New returns, rather than item by item in the
// background, so that full-text search is complete from the start.
type TextSource interface {
	// EachText calls fn with the full-text document of every stored data
	// item: its q, a and index texts, as the Service indexes them.
	EachText(ctx context.Context, fn func(TextDoc) error) error
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
