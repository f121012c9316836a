package pgstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/chatgate/chatgate/dataset"
)

// encodeVector is v's float32s, little-endian, as BoltStore keeps them.
func encodeVector(v []float32) []byte {
	b, _ := binary.Append(make([]byte, 0, 4*len(v)), binary.LittleEndian, v) // a []float32 always encodes
	return b
}

func decodeVector(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	_, _ = binary.Decode(b, binary.LittleEndian, v) // b holds len(v) float32s
	return v
}

// scanData reads a data item from its doc, the whole record as JSON.
func scanData(doc []byte) (*dataset.Data, error) {
	d := new(dataset.Data)
	if err := json.Unmarshal(doc, d); err != nil {
		return nil, err
	}
	d.CreateTime, d.UpdateTime = d.CreateTime.UTC(), d.UpdateTime.UTC()
	return d, nil
}

// scanDataRow reads a row of one doc column.
func scanDataRow(row pgx.Row) (*dataset.Data, error) {
	var doc []byte
	if err := row.Scan(&doc); err != nil {
		return nil, err
	}
	return scanData(doc)
}

// Data implements dataset.DataStore.
func (s *Store) Data(ctx context.Context, id string) (*dataset.Data, error) {
	return one(ctx, s, scanDataRow, dataset.ErrDataNotFound, "data "+id, `SELECT doc FROM dataset_data WHERE id = $1`, id)
}

// DataByID implements dataset.DataReader: one statement for a search's
// hits.
func (s *Store) DataByID(ctx context.Context, ids []string) ([]*dataset.Data, error) {
	return all(ctx, s, scanDataRow, "data of search hits", `SELECT doc FROM dataset_data WHERE id = ANY($1)`, ids)
}

// DataList implements dataset.DataStore: the page and the total in one
// round trip.
func (s *Store) DataList(ctx context.Context, collectionID string, offset, limit int) ([]*dataset.Data, int, error) {
	var (
		out   []*dataset.Data
		total int
	)
	b := &pgx.Batch{}
	b.Queue(`SELECT count(*) FROM dataset_data WHERE collection_id = $1`, collectionID).QueryRow(func(r pgx.Row) error {
		return r.Scan(&total)
	})
	if limit > 0 {
		b.Queue(`SELECT doc FROM dataset_data WHERE collection_id = $1 ORDER BY create_time, create_ns, id OFFSET $2 LIMIT $3`,
			collectionID, max(offset, 0), limit).Query(func(rows pgx.Rows) (err error) {
			out, err = collect(rows, scanDataRow)
			return err
		})
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, 0, fail("data of collection "+collectionID, err)
	}
	return out, total, nil
}

// DataListMatching implements dataset.DataStore. Postgres picks the
// candidates, items whose doc holds text (ASCII letters in any case), and
// dataset.Data.Contains keeps those whose q or a does, so that every store
// matches alike; a text that JSON would escape cannot be looked for in the
// doc as it is, and then every item of the collection is a candidate.
func (s *Store) DataListMatching(ctx context.Context, collectionID, text string, offset, limit int) ([]*dataset.Data, int, error) {
	sql := `SELECT doc FROM dataset_data WHERE collection_id = $1`
	args := []any{collectionID}
	if raw, _ := json.Marshal(text); string(raw) == `"`+text+`"` && text != "" {
		sql += ` AND strpos(lower(doc::text COLLATE "C"), lower($2 COLLATE "C")) > 0`
		args = append(args, text)
	}
	rows, err := s.pool.Query(ctx, sql+` ORDER BY create_time, create_ns, id`, args...)
	if err != nil {
		return nil, 0, fail("data of collection "+collectionID, err)
	}
	defer rows.Close()
	var (
		out   []*dataset.Data
		total int
		doc   []byte
	)
	for rows.Next() {
		if err := rows.Scan(&doc); err != nil {
			return nil, 0, fail("data of collection "+collectionID, err)
		}
		d, err := scanData(doc)
		if err != nil {
			return nil, 0, fail("data of collection "+collectionID, err)
		}
		if !d.Contains(text) {
			continue
		}
		total++
		if total > offset && len(out) < limit {
			out = append(out, d)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fail("data of collection "+collectionID, err)
	}
	return out, total, nil
}

// UpdateData implements dataset.DataStore, in one transaction: the item's
// collection is held (KEY SHARE, as a deletion locks it first), then the
// item; its new q must be free or its own.
func (s *Store) UpdateData(ctx context.Context, d *dataset.Data, vectors []dataset.Vector) error {
	doc, err := json.Marshal(d)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT id FROM dataset_collections WHERE id = $1 FOR KEY SHARE`, d.CollectionID); err != nil {
			return err
		}
		var old []byte
		err := tx.QueryRow(ctx, `SELECT qhash FROM dataset_data WHERE id = $1 FOR UPDATE`, d.ID).Scan(&old)
		if errors.Is(err, pgx.ErrNoRows) {
			return dataset.ErrDataNotFound
		}
		if err != nil {
			return err
		}
		// take the new q, unless another item holds it
		var owner string
		h := qhash(d.Q)
		err = tx.QueryRow(ctx, `INSERT INTO dataset_qkeys (collection_id, qhash, owner) VALUES ($1, $2, $3)
			ON CONFLICT (collection_id, qhash) DO UPDATE SET owner = dataset_qkeys.owner RETURNING owner`,
			d.CollectionID, h, d.ID).Scan(&owner)
		if err != nil {
			return err
		}
		if owner != d.ID {
			return dataset.ErrRepeat
		}
		at, ns := split(d.CreateTime)
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM dataset_qkeys WHERE collection_id = $1 AND qhash = $2 AND owner = $3 AND qhash <> $4`,
			d.CollectionID, old, d.ID, h)
		b.Queue(`UPDATE dataset_data SET qhash = $2, create_time = $3, create_ns = $4, doc = $5 WHERE id = $1`,
			d.ID, h, at, ns, string(doc))
		queueVectors(b, d, vectors)
		return tx.SendBatch(ctx, b).Close()
	})
	if errors.Is(err, dataset.ErrDataNotFound) || errors.Is(err, dataset.ErrRepeat) {
		return err
	}
	if err != nil {
		return fail("update data "+d.ID, err)
	}
	return nil
}

// ImportData implements dataset.DataImporter, in one transaction: the
// collection is held (KEY SHARE, as a deletion locks it first), then the
// item takes its q, which must be free, and is stored with its vectors
// and a change for the feed, as Commit stores what training made.
func (s *Store) ImportData(ctx context.Context, d *dataset.Data, vectors []dataset.Vector) error {
	doc, err := json.Marshal(d)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `SELECT id FROM dataset_collections WHERE id = $1 FOR KEY SHARE`, d.CollectionID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return dataset.ErrCollectionNotFound
		}
		h := qhash(d.Q)
		tag, err = tx.Exec(ctx, `INSERT INTO dataset_qkeys (collection_id, qhash, owner) VALUES ($1, $2, $3)
			ON CONFLICT (collection_id, qhash) DO NOTHING`, d.CollectionID, h, d.ID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return dataset.ErrRepeat
		}
		at, ns := split(d.CreateTime)
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO dataset_data (id, dataset_id, collection_id, qhash, create_time, create_ns, doc)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, d.ID, d.DatasetID, d.CollectionID, h, at, ns, string(doc))
		queueVectors(b, d, vectors)
		return tx.SendBatch(ctx, b).Close()
	})
	switch {
	case err == nil, errors.Is(err, dataset.ErrCollectionNotFound), errors.Is(err, dataset.ErrRepeat):
		return err
	}
	return fail("import data "+d.ID, err)
}

// queueVectors queues the replacement of d's vectors by its among
// vectors, with a change of d for the feed, and the notification.
func queueVectors(b *pgx.Batch, d *dataset.Data, vectors []dataset.Vector) {
	owners, ids, vecs := vectorRows(nil, nil, nil, vectors, d.ID)
	b.Queue(changeVectorsSQL, []string{d.ID}, []string{d.DatasetID})
	b.Queue(insertVectorsSQL, owners, ids, vecs)
	b.Queue(notifySQL)
}

// vectorRows appends to the arrays insertVectorsSQL takes the vectors of
// data item dataID among vs, leaving out the others, as BoltStore does.
func vectorRows(owners, ids []string, vecs [][]byte, vs []dataset.Vector, dataID string) ([]string, []string, [][]byte) {
	for _, v := range vs {
		if dataIDOf(v.ID) == dataID {
			owners, ids, vecs = append(owners, dataID), append(ids, v.ID), append(vecs, encodeVector(v.Values))
		}
	}
	return owners, ids, vecs
}

// dataIDOf is the data id of a vector id: "<data id>" or "<data id>/<n>".
func dataIDOf(vectorID string) string {
	for i := 0; i < len(vectorID); i++ {
		if vectorID[i] == '/' {
			return vectorID[:i]
		}
	}
	return vectorID
}

// changeVectorsSQL removes the vectors of the data items $1 (of the
// datasets $2) and writes a change for each item, listing what it
// removed; insertVectorsSQL then stores the vectors $2 (values $3) of the
// data items $1 (one per vector). Postgres checks a primary key as each
// row is written, so a vector replaced by one of its id must be deleted by
// an earlier statement.
const (
	changeVectorsSQL = `WITH old AS (DELETE FROM dataset_vectors WHERE data_id = ANY($1::text[]) RETURNING data_id, id)
	INSERT INTO dataset_changes (dataset_id, data_id, removed)
	SELECT u.dataset_id, u.id, coalesce((SELECT array_agg(o.id) FROM old o WHERE o.data_id = u.id), '{}')
	FROM unnest($1::text[], $2::text[]) u(id, dataset_id)`
	insertVectorsSQL = `INSERT INTO dataset_vectors (data_id, id, dataset_id, vec)
	SELECT v.data_id, v.id, d.dataset_id, v.vec FROM unnest($1::text[], $2::text[], $3::bytea[]) v(data_id, id, vec)
	JOIN dataset_data d ON d.id = v.data_id`
)

// DeleteData implements dataset.DataStore: one round trip, one
// transaction.
func (s *Store) DeleteData(ctx context.Context, id string) ([]string, error) {
	return s.deleteWith(ctx, "delete data "+id, dataset.ErrDataNotFound, id,
		`SELECT id FROM dataset_data WHERE id = $1 FOR UPDATE`, nil, `id = $1`, nil)
}

// EachVector implements dataset.VectorSource.
func (s *Store) EachVector(ctx context.Context, fn func(datasetID string, v dataset.Vector) error) error {
	rows, err := s.pool.Query(ctx, `SELECT dataset_id, id, vec FROM dataset_vectors`)
	if err != nil {
		return fail("vectors", err)
	}
	defer rows.Close()
	var (
		ds, id string
		vec    []byte
	)
	for rows.Next() {
		if err := rows.Scan(&ds, &id, &vec); err != nil {
			return fail("vectors", err)
		}
		if err := fn(ds, dataset.Vector{ID: id, Values: decodeVector(vec)}); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fail("vectors", err)
	}
	return nil
}
