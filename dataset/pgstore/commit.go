package pgstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatgate/chatgate/dataset"
)

// queued is a training item as Commit finds it, locked.
type queued struct {
	dataset, coll string
	qhash         []byte
}

// qkey is a q of a collection.
type qkey struct{ coll, hash string }

// Commit implements dataset.TrainingQueue: in one transaction, it holds
// the items' collections (KEY SHARE, as a deletion locks them first),
// locks the items and the qs their data would take, then stores the data
// kept, their vectors, a change for each and the usage, and removes the
// items from the queue.
func (s *Store) Commit(ctx context.Context, done []dataset.Trained) ([]string, error) {
	ids := make([]string, len(done))
	var keyColls []string
	var keyHashes [][]byte
	for i, t := range done {
		ids[i] = t.ItemID
		for _, d := range t.Data {
			keyColls, keyHashes = append(keyColls, d.CollectionID), append(keyHashes, qhash(d.Q))
		}
	}
	var (
		gone []string
		kept map[*dataset.Data]bool
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		present := map[string]queued{}
		owners := map[qkey]string{}
		b := &pgx.Batch{}
		b.Queue(`SELECT id FROM dataset_collections
			WHERE id IN (SELECT collection_id FROM dataset_training WHERE id = ANY($1)) ORDER BY id FOR KEY SHARE`, ids)
		b.Queue(`SELECT id, dataset_id, collection_id, qhash FROM dataset_training WHERE id = ANY($1) AND NOT failed
			ORDER BY id FOR UPDATE`, ids).Query(func(rows pgx.Rows) error {
			var (
				id string
				q  queued
			)
			_, err := pgx.ForEachRow(rows, []any{&id, &q.dataset, &q.coll, &q.qhash}, func() error {
				present[id] = q
				return nil
			})
			return err
		})
		b.Queue(`SELECT collection_id, qhash, owner FROM dataset_qkeys
			WHERE (collection_id, qhash) IN (SELECT * FROM unnest($1::text[], $2::bytea[]))
			ORDER BY collection_id, qhash FOR UPDATE`, keyColls, keyHashes).Query(func(rows pgx.Rows) error {
			var (
				coll, owner string
				h           []byte
			)
			_, err := pgx.ForEachRow(rows, []any{&coll, &h, &owner}, func() error {
				owners[qkey{coll, string(h)}] = owner
				return nil
			})
			return err
		})
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		w := &commitWrite{present: present, owners: owners, kept: map[*dataset.Data]bool{}}
		gone = w.plan(done)
		if err := w.takeNewKeys(ctx, tx); err != nil {
			return err
		}
		kept = w.kept
		return tx.SendBatch(ctx, w.batch(done)).Close()
	})
	if err != nil {
		return nil, fail("commit training", err)
	}
	for i, t := range done {
		if isGone(gone, t.ItemID) {
			continue
		}
		var data []*dataset.Data
		var vecs []dataset.Vector
		stored := map[string]bool{}
		for _, d := range t.Data {
			if kept[d] {
				data = append(data, d)
				stored[d.ID] = true
			}
		}
		for _, v := range t.Vectors {
			if stored[dataIDOf(v.ID)] {
				vecs = append(vecs, v)
			}
		}
		done[i].Data, done[i].Vectors = data, vecs
	}
	return gone, nil
}

func isGone(gone []string, id string) bool {
	for _, g := range gone {
		if g == id {
			return true
		}
	}
	return false
}

// commitWrite is what one attempt of Commit's transaction writes.
type commitWrite struct {
	present map[string]queued
	owners  map[qkey]string // the qs' holders, as locked, then as planned
	kept    map[*dataset.Data]bool
	newKeys []*dataset.Data // kept data whose q no one held when locked
	// the items whose own q, held by the item, no data of theirs takes
	freeColls  []string
	freeHashes [][]byte
	freeOwners []string
}

// plan decides, in the order BoltStore does, which data of the present
// items are kept: those whose q is free, or held by the data itself or by
// its item. It returns the items no longer queued.
func (w *commitWrite) plan(done []dataset.Trained) (gone []string) {
	for _, t := range done {
		it, ok := w.present[t.ItemID]
		if !ok {
			gone = append(gone, t.ItemID)
			continue
		}
		stored := false
		for _, d := range t.Data {
			k := qkey{d.CollectionID, string(qhash(d.Q))}
			owner, held := w.owners[k]
			if held && owner != d.ID && owner != t.ItemID {
				continue // a QA pair whose question the collection has
			}
			if !held {
				w.newKeys = append(w.newKeys, d)
			}
			w.owners[k] = d.ID
			w.kept[d] = true
			stored = stored || d.ID == t.ItemID
		}
		if !stored {
			w.freeColls, w.freeHashes, w.freeOwners = append(w.freeColls, it.coll), append(w.freeHashes, it.qhash), append(w.freeOwners, t.ItemID)
		}
	}
	return gone
}

// takeNewKeys inserts the qs no one held. One another replica took since
// cannot be this commit's: its data is left out.
func (w *commitWrite) takeNewKeys(ctx context.Context, tx pgx.Tx) error {
	if len(w.newKeys) == 0 {
		return nil
	}
	colls, hashes, owners := make([]string, len(w.newKeys)), make([][]byte, len(w.newKeys)), make([]string, len(w.newKeys))
	for i, d := range w.newKeys {
		colls[i], hashes[i], owners[i] = d.CollectionID, qhash(d.Q), d.ID
	}
	rows, err := tx.Query(ctx, `INSERT INTO dataset_qkeys (collection_id, qhash, owner)
		SELECT * FROM unnest($1::text[], $2::bytea[], $3::text[]) ORDER BY 1, 2
		ON CONFLICT DO NOTHING RETURNING owner`, colls, hashes, owners)
	if err != nil {
		return err
	}
	took, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	ok := make(map[string]bool, len(took))
	for _, id := range took {
		ok[id] = true
	}
	for _, d := range w.newKeys {
		if !ok[d.ID] {
			delete(w.kept, d)
		}
	}
	return nil
}

// batch is the rest of the commit, in one round trip.
func (w *commitWrite) batch(done []dataset.Trained) *pgx.Batch {
	var (
		upColls, upOwners          []string
		upHashes, dHashes          [][]byte
		dIDs, dSets, dColls, dDocs []string
		dAt                        []time.Time
		dNS                        []int16
		vOwners, vIDs              []string
		vVecs                      [][]byte
		items                      []string
		u                          usageRows
	)
	newKey := make(map[*dataset.Data]bool, len(w.newKeys))
	for _, d := range w.newKeys {
		newKey[d] = true
	}
	for _, t := range done {
		u.add(t.Usage)
		it, ok := w.present[t.ItemID]
		if !ok {
			continue
		}
		items = append(items, t.ItemID)
		for _, d := range t.Data {
			if !w.kept[d] {
				continue
			}
			h := qhash(d.Q)
			if !newKey[d] {
				upColls, upHashes, upOwners = append(upColls, d.CollectionID), append(upHashes, h), append(upOwners, d.ID)
			}
			doc, _ := json.Marshal(d) // a Data always marshals
			at, ns := split(d.CreateTime)
			dIDs, dSets, dColls = append(dIDs, d.ID), append(dSets, it.dataset), append(dColls, d.CollectionID)
			dHashes, dDocs, dAt, dNS = append(dHashes, h), append(dDocs, string(doc)), append(dAt, at), append(dNS, ns)
			vOwners, vIDs, vVecs = vectorRows(vOwners, vIDs, vVecs, t.Vectors, d.ID)
		}
	}
	b := &pgx.Batch{}
	if len(upColls) > 0 {
		b.Queue(`UPDATE dataset_qkeys q SET owner = u.owner FROM unnest($1::text[], $2::bytea[], $3::text[]) u(coll, h, owner)
			WHERE q.collection_id = u.coll AND q.qhash = u.h`, upColls, upHashes, upOwners)
	}
	if len(w.freeColls) > 0 {
		b.Queue(`DELETE FROM dataset_qkeys q USING unnest($1::text[], $2::bytea[], $3::text[]) u(coll, h, owner)
			WHERE q.collection_id = u.coll AND q.qhash = u.h AND q.owner = u.owner`, w.freeColls, w.freeHashes, w.freeOwners)
	}
	if len(dIDs) > 0 {
		b.Queue(`INSERT INTO dataset_data (id, dataset_id, collection_id, qhash, create_time, create_ns, doc)
			SELECT id, dataset_id, collection_id, qhash, t, ns, doc::json
			FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::timestamptz[], $6::smallint[], $7::text[])
				AS u(id, dataset_id, collection_id, qhash, t, ns, doc)
			ON CONFLICT (id) DO UPDATE SET dataset_id = excluded.dataset_id, collection_id = excluded.collection_id,
				qhash = excluded.qhash, create_time = excluded.create_time, create_ns = excluded.create_ns, doc = excluded.doc`,
			dIDs, dSets, dColls, dHashes, dAt, dNS, dDocs)
		b.Queue(changeVectorsSQL, dIDs, dSets)
		b.Queue(insertVectorsSQL, vOwners, vIDs, vVecs)
		b.Queue(notifySQL)
	}
	if len(u.ids) > 0 {
		b.Queue(usageInsertSQL, u.args()...)
	}
	if len(items) > 0 {
		b.Queue(`DELETE FROM dataset_training WHERE id = ANY($1)`, items)
	}
	return b
}
