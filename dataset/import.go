package dataset

import (
	"cmp"
	"context"
)

// DatasetLister lists every team's datasets, where DatasetStore lists one
// team's: what a copy of a whole store into another needs (the reference
// server's migrate command copies a bbolt store into Postgres with it).
// BoltStore, MemoryStore and dataset/pgstore's Store implement it.
type DatasetLister interface {
	// AllDatasets returns every dataset, oldest first (by CreateTime,
	// then ID).
	AllDatasets(ctx context.Context) ([]*Dataset, error)
}

// TrainingLister lists a collection's queued items, where TrainingQueue
// claims only those due and TrainingProgress lists only the failed: a copy
// of a whole store takes every one, as it stands.
// BoltStore, MemoryStore and dataset/pgstore's Store implement it.
type TrainingLister interface {
	// TrainingItems returns the collection's queued items, failed ones
	// included, by ID.
	TrainingItems(ctx context.Context, collectionID string) ([]*TrainingItem, error)
}

// DataImporter stores data as another store holds it, where only training
// (TrainingQueue.Commit) stores new data: a copy of a whole store brings
// each item with its ids, times and vectors, not to be trained again.
// BoltStore, MemoryStore and dataset/pgstore's Store implement it.
type DataImporter interface {
	// ImportData stores d, as it is, with its vectors, in one transaction,
	// as Commit stores what an item trained into (the full-text entry of d
	// becomes pending). It fails with ErrCollectionNotFound when d's
	// collection is gone and with ErrRepeat when d's q is the collection's
	// already, storing nothing.
	ImportData(ctx context.Context, d *Data, vectors []Vector) error
}

// datasetOrder orders datasets as AllDatasets returns them.
func datasetOrder(a, b *Dataset) int {
	return cmp.Or(a.CreateTime.Compare(b.CreateTime), cmp.Compare(a.ID, b.ID))
}
