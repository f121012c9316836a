package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chatgate/chatgate/dataset"
)

// scanDataset reads a row of datasetColumns.
func scanDataset(row pgx.Row) (*dataset.Dataset, error) {
	var (
		d  dataset.Dataset
		ns int16
	)
	if err := row.Scan(&d.ID, &d.TeamID, &d.Name, &d.VectorModel, &d.CreateTime, &ns); err != nil {
		return nil, err
	}
	d.CreateTime = joined(d.CreateTime, ns)
	return &d, nil
}

const datasetColumns = `id, team_id, name, vector_model, create_time, create_ns`

// PutDataset implements dataset.DatasetStore.
func (s *Store) PutDataset(ctx context.Context, d *dataset.Dataset) error {
	at, ns := split(d.CreateTime)
	return s.exec(ctx, "put dataset "+d.ID, `INSERT INTO dataset_datasets (`+datasetColumns+`) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET team_id = excluded.team_id, name = excluded.name,
			vector_model = excluded.vector_model, create_time = excluded.create_time, create_ns = excluded.create_ns`,
		d.ID, d.TeamID, d.Name, d.VectorModel, at, ns)
}

// Dataset implements dataset.DatasetStore.
func (s *Store) Dataset(ctx context.Context, id string) (*dataset.Dataset, error) {
	return one(ctx, s, scanDataset, dataset.ErrDatasetNotFound, "dataset "+id,
		`SELECT `+datasetColumns+` FROM dataset_datasets WHERE id = $1`, id)
}

// Datasets implements dataset.DatasetStore.
func (s *Store) Datasets(ctx context.Context, teamID string) ([]*dataset.Dataset, error) {
	return all(ctx, s, scanDataset, "datasets of team "+teamID,
		`SELECT `+datasetColumns+` FROM dataset_datasets WHERE team_id = $1 ORDER BY create_time, create_ns, id`, teamID)
}

// AllDatasets implements dataset.DatasetLister.
func (s *Store) AllDatasets(ctx context.Context) ([]*dataset.Dataset, error) {
	return all(ctx, s, scanDataset, "datasets",
		`SELECT `+datasetColumns+` FROM dataset_datasets ORDER BY create_time, create_ns, id`)
}

// DeleteDataset implements dataset.DatasetStore, in one transaction: the
// dataset and its collections are locked first, so that writers into them
// finish before and fail after; then everything they hold goes, each data
// item with a change for the feed, and a last change tells the replicas
// the dataset is gone.
func (s *Store) DeleteDataset(ctx context.Context, id string) error {
	var n int64
	err := retry(func() error {
		b := &pgx.Batch{}
		b.Queue(`SELECT id FROM dataset_datasets WHERE id = $1 FOR UPDATE`, id)
		b.Queue(`SELECT id FROM dataset_collections WHERE dataset_id = $1 ORDER BY id FOR UPDATE`, id)
		colls := `(SELECT id FROM dataset_collections WHERE dataset_id = $1)`
		b.Queue(`DELETE FROM dataset_training WHERE collection_id IN `+colls, id)
		b.Queue(deleteDataSQL(`collection_id IN `+colls), id)
		b.Queue(`DELETE FROM dataset_qkeys WHERE collection_id IN `+colls, id)
		b.Queue(`DELETE FROM dataset_collections WHERE dataset_id = $1`, id)
		b.Queue(`INSERT INTO dataset_changes (dataset_id, data_id) SELECT id, NULL FROM dataset_datasets WHERE id = $1`, id)
		b.Queue(`DELETE FROM dataset_datasets WHERE id = $1`, id).Exec(func(tag pgconn.CommandTag) error {
			n = tag.RowsAffected()
			return nil
		})
		b.Queue(notifySQL)
		return s.pool.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fail("delete dataset "+id, err)
	}
	if n == 0 {
		return dataset.ErrDatasetNotFound
	}
	return nil
}

const collectionColumns = `id, team_id, dataset_id, name, type, training_type, chunk_size, create_time, create_ns`

func scanCollection(row pgx.Row) (*dataset.Collection, error) {
	var (
		c    dataset.Collection
		mode string
		ns   int16
	)
	if err := row.Scan(&c.ID, &c.TeamID, &c.DatasetID, &c.Name, &c.Type, &mode, &c.ChunkSize, &c.CreateTime, &ns); err != nil {
		return nil, err
	}
	c.TrainingType, c.CreateTime = dataset.TrainingMode(mode), joined(c.CreateTime, ns)
	return &c, nil
}

// putCollectionSQL stores a collection; $10 says whether one with its id
// is replaced (PutCollection) or kept (CreateCollection, which then
// returns no row).
const putCollectionSQL = `INSERT INTO dataset_collections (` + collectionColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
	ON CONFLICT (id) DO UPDATE SET team_id = excluded.team_id, dataset_id = excluded.dataset_id,
		name = excluded.name, type = excluded.type, training_type = excluded.training_type,
		chunk_size = excluded.chunk_size, create_time = excluded.create_time, create_ns = excluded.create_ns
	WHERE $10::boolean
	RETURNING id`

func collectionArgs(c *dataset.Collection, replace bool) []any {
	at, ns := split(c.CreateTime)
	return []any{c.ID, c.TeamID, c.DatasetID, c.Name, c.Type, string(c.TrainingType), c.ChunkSize, at, ns, replace}
}

// PutCollection implements dataset.CollectionStore. The collection's
// foreign key holds its dataset while it is written, so that a dataset
// deleted meanwhile, through any replica, answers ErrDatasetNotFound.
func (s *Store) PutCollection(ctx context.Context, c *dataset.Collection) error {
	_, err := s.pool.Exec(ctx, putCollectionSQL, collectionArgs(c, true)...)
	if pgCode(err) == codeForeignKey {
		return dataset.ErrDatasetNotFound
	}
	if err != nil {
		return fail("put collection "+c.ID, err)
	}
	return nil
}

// Collections implements dataset.CollectionStore.
func (s *Store) Collections(ctx context.Context, datasetID string) ([]*dataset.Collection, error) {
	return all(ctx, s, scanCollection, "collections of dataset "+datasetID,
		`SELECT `+collectionColumns+` FROM dataset_collections WHERE dataset_id = $1 ORDER BY create_time, create_ns, id`, datasetID)
}

// Collection implements dataset.CollectionStore.
func (s *Store) Collection(ctx context.Context, id string) (*dataset.Collection, error) {
	return one(ctx, s, scanCollection, dataset.ErrCollectionNotFound, "collection "+id,
		`SELECT `+collectionColumns+` FROM dataset_collections WHERE id = $1`, id)
}

// DeleteCollection implements dataset.CollectionStore, in one round trip
// and one transaction that first locks the collection (see
// DeleteDataset).
func (s *Store) DeleteCollection(ctx context.Context, id string) ([]string, error) {
	return s.deleteWith(ctx, "delete collection "+id, dataset.ErrCollectionNotFound, id,
		`SELECT id FROM dataset_collections WHERE id = $1 FOR UPDATE`,
		[]string{`DELETE FROM dataset_training WHERE collection_id = $1`},
		`collection_id = $1`,
		[]string{`DELETE FROM dataset_qkeys WHERE collection_id = $1`, `DELETE FROM dataset_collections WHERE id = $1`})
}

// deleteWith runs, in one batch (so one transaction), lock, which finds
// the record id names or not, the statements before, deleteDataSQL(where),
// the statements after, and the notification; each statement takes id as
// $1. It returns the vectors removed, or missing when lock found nothing.
func (s *Store) deleteWith(ctx context.Context, op string, missing error, id, lock string, before []string, where string, after []string) ([]string, error) {
	var (
		found   bool
		removed []string
	)
	err := retry(func() error {
		b := &pgx.Batch{}
		b.Queue(lock, id).Exec(func(tag pgconn.CommandTag) error {
			found = tag.RowsAffected() > 0
			return nil
		})
		for _, sql := range before {
			b.Queue(sql, id)
		}
		b.Queue(deleteDataSQL(where), id).Query(func(rows pgx.Rows) (err error) {
			removed, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		})
		for _, sql := range after {
			b.Queue(sql, id)
		}
		b.Queue(notifySQL)
		return s.pool.SendBatch(ctx, b).Close()
	})
	switch {
	case err != nil:
		return nil, fail(op, err)
	case !found:
		return nil, missing
	case removed == nil:
		return []string{}, nil
	}
	return removed, nil
}

// deleteDataSQL deletes the data matching where (of $1) with their
// vectors and q keys, writes a change for each, and returns the ids of the
// vectors removed.
func deleteDataSQL(where string) string {
	return `WITH d AS (DELETE FROM dataset_data WHERE ` + where + ` RETURNING id, dataset_id, collection_id, qhash),
	v AS (DELETE FROM dataset_vectors WHERE data_id IN (SELECT id FROM d) RETURNING data_id, id),
	k AS (DELETE FROM dataset_qkeys q USING d WHERE q.collection_id = d.collection_id AND q.qhash = d.qhash AND q.owner = d.id),
	c AS (INSERT INTO dataset_changes (dataset_id, data_id, removed)
		SELECT d.dataset_id, d.id, coalesce(g.ids, '{}') FROM d
		LEFT JOIN (SELECT data_id, array_agg(id) AS ids FROM v GROUP BY data_id) g ON g.data_id = d.id)
	SELECT id FROM v`
}
