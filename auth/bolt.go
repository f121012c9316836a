package auth

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/internal/boltx"
)

var (
	bucketKeys   = []byte("auth.keys")   // id -> Key JSON
	bucketHashes = []byte("auth.hashes") // hash -> id
	bucketUsage  = []byte("auth.usage")  // id -> usage JSON
	bucketAudit  = []byte("auth.audit")  // big-endian seq -> AuditEvent JSON
	// auth.audit.team indexes the trail by team: 2-byte length, team id,
	// seq -> nothing. The audit API always asks for one team, whose events
	// may be few among many failures of no team (unknown keys).
	bucketAuditTeam = []byte("auth.audit.team")
)

// BoltStore is a Store in a bbolt database. It owns the auth.* buckets and
// shares the file with the other domains' stores.
type BoltStore struct {
	db *bbolt.DB
}

// NewBoltStore returns a store on db, creating its buckets if needed.
func NewBoltStore(db *bbolt.DB) (*BoltStore, error) {
	if err := boltx.EnsureBuckets(db, bucketKeys, bucketHashes, bucketUsage, bucketAudit); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if err := db.Update(indexAuditTeams); err != nil {
		return nil, fmt.Errorf("auth: indexing the audit trail by team: %w", err)
	}
	return &BoltStore{db: db}, nil
}

// indexAuditTeams creates the team index, once, over a trail written
// before it existed.
func indexAuditTeams(tx *bbolt.Tx) error {
	if tx.Bucket(bucketAuditTeam) != nil {
		return nil
	}
	idx, err := tx.CreateBucket(bucketAuditTeam)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketAudit).ForEach(func(k, v []byte) error {
		team, err := auditTeam(v)
		if err != nil || team == "" {
			return err
		}
		return idx.Put(teamKey(team, binary.BigEndian.Uint64(k)), nil)
	})
}

func teamKey(team string, seq uint64) []byte {
	k := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(team)+8), uint16(len(team)))
	return binary.BigEndian.AppendUint64(append(k, team...), seq)
}

func auditTeam(v []byte) (string, error) {
	var e struct {
		TeamID string `json:"teamId"`
	}
	err := json.Unmarshal(v, &e)
	return e.TeamID, err
}

type usageRecord struct {
	Points   float64 `json:"points"`
	LastUsed int64   `json:"lastUsed"` // unix nanoseconds
}

// Create implements KeyWriter.
func (s *BoltStore) Create(ctx context.Context, k *Key, ev *AuditEvent) error {
	return boltx.Update(ctx, s.db, func(tx *bbolt.Tx) error {
		keys := tx.Bucket(bucketKeys)
		if keys.Get([]byte(k.ID)) != nil {
			return ErrKeyExists
		}
		if err := claimHashes(tx, k, nil); err != nil {
			return err
		}
		if err := boltx.PutJSON(keys, []byte(k.ID), k); err != nil {
			return err
		}
		return putAudit(tx, ev)
	})
}

// Update implements KeyWriter.
func (s *BoltStore) Update(ctx context.Context, k *Key, ev *AuditEvent) error {
	return boltx.Update(ctx, s.db, func(tx *bbolt.Tx) error {
		keys := tx.Bucket(bucketKeys)
		var old Key
		ok, err := boltx.GetJSON(keys, []byte(k.ID), &old)
		if err != nil {
			return err
		}
		if !ok {
			return ErrKeyNotFound
		}
		if err := claimHashes(tx, k, &old); err != nil {
			return err
		}
		if err := boltx.PutJSON(keys, []byte(k.ID), k); err != nil {
			return err
		}
		return putAudit(tx, ev)
	})
}

// claimHashes points k's hashes at k and drops old's hashes that k no longer has.
func claimHashes(tx *bbolt.Tx, k, old *Key) error {
	hb := tx.Bucket(bucketHashes)
	hs := k.hashes()
	for _, h := range hs {
		if id := hb.Get(h[:]); id != nil && string(id) != k.ID {
			return ErrHashInUse
		}
	}
	if old != nil {
		for _, h := range old.hashes() {
			if !slices.Contains(hs, h) {
				if err := hb.Delete(h[:]); err != nil {
					return err
				}
			}
		}
	}
	for _, h := range hs {
		if err := hb.Put(h[:], []byte(k.ID)); err != nil {
			return err
		}
	}
	return nil
}

// Delete implements KeyWriter.
func (s *BoltStore) Delete(ctx context.Context, id string, ev *AuditEvent) error {
	return boltx.Update(ctx, s.db, func(tx *bbolt.Tx) error {
		keys := tx.Bucket(bucketKeys)
		var k Key
		ok, err := boltx.GetJSON(keys, []byte(id), &k)
		if err != nil {
			return err
		}
		if !ok {
			return ErrKeyNotFound
		}
		for _, h := range k.hashes() {
			if err := tx.Bucket(bucketHashes).Delete(h[:]); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketUsage).Delete([]byte(id)); err != nil {
			return err
		}
		if err := keys.Delete([]byte(id)); err != nil {
			return err
		}
		return putAudit(tx, ev)
	})
}

// Get implements KeyReader.
func (s *BoltStore) Get(ctx context.Context, id string) (*Key, error) {
	var k *Key
	err := boltx.View(ctx, s.db, func(tx *bbolt.Tx) (err error) {
		k, err = getKey(tx, []byte(id))
		return err
	})
	return k, err
}

// GetByHash implements KeyReader.
func (s *BoltStore) GetByHash(ctx context.Context, h Hash) (*Key, error) {
	var k *Key
	err := boltx.View(ctx, s.db, func(tx *bbolt.Tx) (err error) {
		id := tx.Bucket(bucketHashes).Get(h[:])
		if id == nil {
			return ErrKeyNotFound
		}
		k, err = getKey(tx, id)
		return err
	})
	return k, err
}

func getKey(tx *bbolt.Tx, id []byte) (*Key, error) {
	k := new(Key)
	ok, err := boltx.GetJSON(tx.Bucket(bucketKeys), id, k)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrKeyNotFound
	}
	return k, readUsage(tx, k)
}

func readUsage(tx *bbolt.Tx, k *Key) error {
	var u usageRecord
	if _, err := boltx.GetJSON(tx.Bucket(bucketUsage), []byte(k.ID), &u); err != nil {
		return err
	}
	k.UsagePoints = u.Points
	if u.LastUsed != 0 {
		k.LastUsedTime = time.Unix(0, u.LastUsed).UTC()
	}
	return nil
}

// List implements KeyLister.
func (s *BoltStore) List(ctx context.Context, f Filter) ([]*Key, error) {
	var out []*Key
	err := boltx.View(ctx, s.db, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketKeys).ForEach(func(id, v []byte) error {
			k, err := getKey(tx, id)
			if err != nil {
				return err
			}
			if f.match(k) {
				out = append(out, k)
			}
			return nil
		})
	})
	sortKeys(out)
	return out, err
}

// AddUsage implements UsageWriter.
func (s *BoltStore) AddUsage(ctx context.Context, us []Usage) error {
	if len(us) == 0 {
		return nil
	}
	return boltx.Update(ctx, s.db, func(tx *bbolt.Tx) error {
		keys, ub := tx.Bucket(bucketKeys), tx.Bucket(bucketUsage)
		for _, u := range us {
			if keys.Get([]byte(u.KeyID)) == nil {
				continue // revoked while its usage waited to be flushed
			}
			var r usageRecord
			if _, err := boltx.GetJSON(ub, []byte(u.KeyID), &r); err != nil {
				return err
			}
			r.Points += u.Points
			if n := u.LastUsed.UnixNano(); !u.LastUsed.IsZero() && n > r.LastUsed {
				r.LastUsed = n
			}
			if err := boltx.PutJSON(ub, []byte(u.KeyID), r); err != nil {
				return err
			}
		}
		return nil
	})
}

// AppendAudit implements AuditWriter.
func (s *BoltStore) AppendAudit(ctx context.Context, evs []AuditEvent) error {
	if len(evs) == 0 {
		return nil
	}
	return boltx.Update(ctx, s.db, func(tx *bbolt.Tx) error {
		for i := range evs {
			if err := putAudit(tx, &evs[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

func putAudit(tx *bbolt.Tx, ev *AuditEvent) error {
	if ev == nil {
		return nil
	}
	seq, err := tx.Bucket(bucketAudit).NextSequence()
	if err != nil {
		return err
	}
	e := *ev
	e.Seq = seq
	return writeAudit(tx, &e)
}

// writeAudit stores e under its Seq, and in the team index.
func writeAudit(tx *bbolt.Tx, e *AuditEvent) error {
	if err := boltx.PutJSON(tx.Bucket(bucketAudit), boltx.Seq(e.Seq), e); err != nil {
		return err
	}
	if e.TeamID == "" {
		return nil
	}
	return tx.Bucket(bucketAuditTeam).Put(teamKey(e.TeamID, e.Seq), nil)
}

// ImportAudit implements AuditImporter. TrimAudit takes the trail's seqs
// to be contiguous when it keeps the newest events, so a trail imported
// into a store that holds events should continue their seqs.
func (s *BoltStore) ImportAudit(ctx context.Context, evs []AuditEvent) error {
	if len(evs) == 0 {
		return nil
	}
	return boltx.Update(ctx, s.db, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		for i := range evs {
			if evs[i].Seq <= b.Sequence() {
				return fmt.Errorf("%w: event %d after %d", ErrAuditSeq, evs[i].Seq, b.Sequence())
			}
			if err := b.SetSequence(evs[i].Seq); err != nil {
				return err
			}
			if err := writeAudit(tx, &evs[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// Audit implements AuditReader. It reads newest first and stops at q's limit; a
// query for one team reads only that team's events, through the index.
func (s *BoltStore) Audit(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	var out []AuditEvent
	err := boltx.View(ctx, s.db, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		add := func(v []byte) error {
			var e AuditEvent
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			if q.match(&e) {
				out = append(out, e)
			}
			return nil
		}
		if q.TeamID == "" {
			c := b.Cursor()
			for k, v := c.Last(); k != nil && len(out) < q.limit(); k, v = c.Prev() {
				if err := add(v); err != nil {
					return err
				}
			}
			return nil
		}
		prefix := teamKey(q.TeamID, 0)
		prefix = prefix[:len(prefix)-8]
		c := tx.Bucket(bucketAuditTeam).Cursor()
		// the team's newest entry is the last one before the next team's
		end := teamKey(q.TeamID, math.MaxUint64)
		k, _ := c.Seek(end)
		switch {
		case k == nil:
			k, _ = c.Last()
		case !bytes.Equal(k, end):
			k, _ = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < q.limit(); k, _ = c.Prev() {
			if v := b.Get(k[len(prefix):]); v != nil {
				if err := add(v); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return out, err
}

// trimBatch bounds how many audit events one transaction removes, so that
// trimming a long trail neither holds the write lock nor grows the
// transaction's memory for long.
const trimBatch = 10_000

// TrimAudit implements AuditTrimmer. The trail's seqs are contiguous (events are
// only ever removed from the oldest end), so the newest keep events are
// those above the last seq minus keep.
func (s *BoltStore) TrimAudit(ctx context.Context, before time.Time, keep int) (int, error) {
	total := 0
	for {
		n, err := s.trimAuditBatch(ctx, before, keep)
		total += n
		if err != nil || n < trimBatch {
			return total, err
		}
	}
}

func (s *BoltStore) trimAuditBatch(ctx context.Context, before time.Time, keep int) (int, error) {
	var del [][]byte
	err := boltx.Update(ctx, s.db, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		c := b.Cursor()
		last, _ := c.Last()
		if last == nil {
			return nil
		}
		var cut uint64 // events up to this seq are beyond keep
		if n := binary.BigEndian.Uint64(last); keep > 0 && n > uint64(keep) {
			cut = n - uint64(keep)
		}
		for k, v := c.First(); k != nil && len(del) < trimBatch; k, v = c.Next() {
			if binary.BigEndian.Uint64(k) > cut {
				if before.IsZero() {
					break
				}
				var e struct {
					Time time.Time `json:"time"`
				}
				if err := json.Unmarshal(v, &e); err != nil {
					return fmt.Errorf("decode audit event %d: %w", binary.BigEndian.Uint64(k), err)
				}
				if !e.Time.Before(before) {
					break
				}
			}
			del = append(del, slices.Clone(k))
		}
		idx := tx.Bucket(bucketAuditTeam)
		for _, k := range del {
			team, err := auditTeam(b.Get(k))
			if err != nil {
				return fmt.Errorf("decode audit event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if team != "" {
				if err := idx.Delete(teamKey(team, binary.BigEndian.Uint64(k))); err != nil {
					return err
				}
			}
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(del), nil
}
