package shareauth

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/internal/boltx"
)

var (
	bucketLinks  = []byte("shareauth.links")  // id -> storedLink
	bucketOutbox = []byte("shareauth.outbox") // id -> Delivery
	bucketDue    = []byte("shareauth.due")    // next attempt(8)id -> ""
)

// BoltStore is a Store in a bbolt database, in the shareauth.* buckets of
// the file the other domains share.
type BoltStore struct {
	db *bbolt.DB
}

// NewBoltStore returns a store on db, creating its buckets if needed.
func NewBoltStore(db *bbolt.DB) (*BoltStore, error) {
	if err := boltx.EnsureBuckets(db, bucketLinks, bucketOutbox, bucketDue); err != nil {
		return nil, fmt.Errorf("shareauth: %w", err)
	}
	return &BoltStore{db: db}, nil
}

func putLink(b *bbolt.Bucket, l *Link) error {
	return boltx.PutJSON(b, []byte(l.ID), storedLink{Link: *l, Secret: l.Secret})
}

func getLink(b *bbolt.Bucket, id string) (*Link, error) {
	var st storedLink
	ok, err := boltx.GetJSON(b, []byte(id), &st)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrLinkNotFound
	}
	l := st.Link
	l.Secret = st.Secret
	return &l, nil
}

// PutLink implements Store.
func (s *BoltStore) PutLink(ctx context.Context, l *Link) error {
	return s.db.Update(func(tx *bbolt.Tx) error { return putLink(tx.Bucket(bucketLinks), l) })
}

// Link implements Store.
func (s *BoltStore) Link(ctx context.Context, id string) (*Link, error) {
	var l *Link
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		l, err = getLink(tx.Bucket(bucketLinks), id)
		return err
	})
	return l, err
}

// Links implements Store.
func (s *BoltStore) Links(ctx context.Context, teamID, appID string) ([]*Link, error) {
	var out []*Link
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketLinks).ForEach(func(k, _ []byte) error {
			l, err := getLink(tx.Bucket(bucketLinks), string(k))
			if err != nil {
				return err
			}
			if l.TeamID == teamID && (appID == "" || l.AppID == appID) {
				out = append(out, l)
			}
			return nil
		})
	})
	slices.SortFunc(out, func(a, b *Link) int { return cmp.Or(a.CreateTime.Compare(b.CreateTime), cmp.Compare(a.ID, b.ID)) })
	return out, err
}

// DeleteLink implements Store.
func (s *BoltStore) DeleteLink(ctx context.Context, id string) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		lb := tx.Bucket(bucketLinks)
		if lb.Get([]byte(id)) == nil {
			return ErrLinkNotFound
		}
		ob, due := tx.Bucket(bucketOutbox), tx.Bucket(bucketDue)
		var drop []*Delivery
		if err := ob.ForEach(func(_, v []byte) error {
			d := new(Delivery)
			if err := json.Unmarshal(v, d); err != nil {
				return err
			}
			if d.ShareID == id {
				drop = append(drop, d)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, d := range drop {
			if err := ob.Delete([]byte(d.ID)); err != nil {
				return err
			}
			if err := due.Delete(dueKey(d)); err != nil {
				return err
			}
		}
		return lb.Delete([]byte(id))
	})
}

// AddUsage implements Store.
func (s *BoltStore) AddUsage(ctx context.Context, id string, points float64, at time.Time) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketLinks)
		l, err := getLink(b, id)
		if err != nil {
			return err
		}
		l.UsagePoints += points
		if at.After(l.LastUsedTime) {
			l.LastUsedTime = at
		}
		return putLink(b, l)
	})
}

func dueKey(d *Delivery) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(d.NextAttempt.UnixNano())), d.ID...)
}

// Enqueue implements Store.
func (s *BoltStore) Enqueue(ctx context.Context, d *Delivery) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		if err := boltx.PutJSON(tx.Bucket(bucketOutbox), []byte(d.ID), d); err != nil {
			return err
		}
		return tx.Bucket(bucketDue).Put(dueKey(d), nil)
	})
}

// Due implements Store.
func (s *BoltStore) Due(ctx context.Context, now time.Time, n int) ([]*Delivery, error) {
	var out []*Delivery
	limit := binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano())+1)
	err := s.db.View(func(tx *bbolt.Tx) error {
		ob := tx.Bucket(bucketOutbox)
		c := tx.Bucket(bucketDue).Cursor()
		for k, _ := c.First(); k != nil && len(out) < n && bytes.Compare(k, limit) < 0; k, _ = c.Next() {
			d := new(Delivery)
			ok, err := boltx.GetJSON(ob, k[8:], d)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, d)
			}
		}
		return nil
	})
	return out, err
}

// Delivered implements Store.
func (s *BoltStore) Delivered(ctx context.Context, id string) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		ob := tx.Bucket(bucketOutbox)
		d := new(Delivery)
		ok, err := boltx.GetJSON(ob, []byte(id), d)
		if err != nil || !ok {
			return err
		}
		if err := tx.Bucket(bucketDue).Delete(dueKey(d)); err != nil {
			return err
		}
		return ob.Delete([]byte(id))
	})
}

// Reschedule implements Store.
func (s *BoltStore) Reschedule(ctx context.Context, d *Delivery) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		ob := tx.Bucket(bucketOutbox)
		old := new(Delivery)
		ok, err := boltx.GetJSON(ob, []byte(d.ID), old)
		if err != nil || !ok {
			return err
		}
		due := tx.Bucket(bucketDue)
		if err := due.Delete(dueKey(old)); err != nil {
			return err
		}
		if err := due.Put(dueKey(d), nil); err != nil {
			return err
		}
		return boltx.PutJSON(ob, []byte(d.ID), d)
	})
}

// Pending implements Store.
func (s *BoltStore) Pending(ctx context.Context, shareID string) (int, error) {
	n := 0
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketOutbox).ForEach(func(_, v []byte) error {
			var d struct {
				ShareID string `json:"shareId"`
			}
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			if d.ShareID == shareID {
				n++
			}
			return nil
		})
	})
	return n, err
}
