package shareauth

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/internal/boltx"
	"github.com/chatgate/chatgate/queue"
)

var (
	bucketLinks  = []byte("shareauth.links")  // id -> storedLink
	bucketOutbox = []byte("shareauth.outbox") // id -> Delivery
	bucketDue    = []byte("shareauth.due")    // next attempt(8)id -> "", for deliveries not failed
)

// BoltStore is a Store in a bbolt database, in the shareauth.* buckets of
// the file the other domains share. One process holds the file, so its
// Claim keeps nothing from other claims: the Runner keeps its own apart.
//
// AddUsage, which every chat through a link makes after its usage record,
// shares commits among concurrent calls (boltx.Group), as the ledger's
// records do, rather than adding a commit of its own to each chat.
type BoltStore struct {
	db    *bbolt.DB
	usage *boltx.Group
}

// NewBoltStore returns a store on db, creating its buckets if needed.
func NewBoltStore(db *bbolt.DB) (*BoltStore, error) {
	if err := boltx.EnsureBuckets(db, bucketLinks, bucketOutbox, bucketDue); err != nil {
		return nil, fmt.Errorf("shareauth: %w", err)
	}
	return &BoltStore{db: db, usage: &boltx.Group{DB: db}}, nil
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

// PutLink implements LinkStore.
func (s *BoltStore) PutLink(ctx context.Context, l *Link) error {
	return s.db.Update(func(tx *bbolt.Tx) error { return putLink(tx.Bucket(bucketLinks), l) })
}

// Link implements LinkStore.
func (s *BoltStore) Link(ctx context.Context, id string) (*Link, error) {
	var l *Link
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		l, err = getLink(tx.Bucket(bucketLinks), id)
		return err
	})
	return l, err
}

// Links implements LinkStore.
func (s *BoltStore) Links(ctx context.Context, teamID, appID string) ([]*Link, error) {
	return s.linksWhere(func(l *Link) bool { return l.TeamID == teamID && (appID == "" || l.AppID == appID) })
}

// AllLinks implements LinkLister.
func (s *BoltStore) AllLinks(ctx context.Context) ([]*Link, error) {
	return s.linksWhere(func(*Link) bool { return true })
}

// linksWhere returns the links keep selects, oldest first.
func (s *BoltStore) linksWhere(keep func(*Link) bool) ([]*Link, error) {
	var out []*Link
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketLinks).ForEach(func(k, _ []byte) error {
			l, err := getLink(tx.Bucket(bucketLinks), string(k))
			if err != nil {
				return err
			}
			if keep(l) {
				out = append(out, l)
			}
			return nil
		})
	})
	slices.SortFunc(out, byLinkCreation)
	return out, err
}

// DeleteLink implements LinkStore.
func (s *BoltStore) DeleteLink(ctx context.Context, id string) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		lb := tx.Bucket(bucketLinks)
		if lb.Get([]byte(id)) == nil {
			return ErrLinkNotFound
		}
		drop, err := linkDeliveries(tx, id)
		if err != nil {
			return err
		}
		for _, d := range drop {
			if err := dropDelivery(tx, d); err != nil {
				return err
			}
		}
		return lb.Delete([]byte(id))
	})
}

// AddUsage implements LinkStore.
func (s *BoltStore) AddUsage(ctx context.Context, id string, points float64, at time.Time) error {
	return s.usage.Update(ctx, func(tx *bbolt.Tx) error {
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

// putDelivery stores d and, unless it failed, its place in the due index.
func putDelivery(tx *bbolt.Tx, d *Delivery) error {
	if err := boltx.PutJSON(tx.Bucket(bucketOutbox), []byte(d.ID), d); err != nil {
		return err
	}
	if d.Failed {
		return nil
	}
	return tx.Bucket(bucketDue).Put(dueKey(d), nil)
}

// dropDelivery removes d and its place in the due index.
func dropDelivery(tx *bbolt.Tx, d *Delivery) error {
	if err := tx.Bucket(bucketDue).Delete(dueKey(d)); err != nil {
		return err
	}
	return tx.Bucket(bucketOutbox).Delete([]byte(d.ID))
}

// getDelivery reads delivery id; nil when it is not queued.
func getDelivery(tx *bbolt.Tx, id []byte) (*Delivery, error) {
	d := new(Delivery)
	ok, err := boltx.GetJSON(tx.Bucket(bucketOutbox), id, d)
	if err != nil || !ok {
		return nil, err
	}
	return d, nil
}

// linkDeliveries returns the deliveries of link shareID.
func linkDeliveries(tx *bbolt.Tx, shareID string) ([]*Delivery, error) {
	return deliveriesWhere(tx, func(d *Delivery) bool { return d.ShareID == shareID })
}

// deliveriesWhere returns the deliveries keep selects.
func deliveriesWhere(tx *bbolt.Tx, keep func(*Delivery) bool) ([]*Delivery, error) {
	var out []*Delivery
	err := tx.Bucket(bucketOutbox).ForEach(func(_, v []byte) error {
		d := new(Delivery)
		if err := json.Unmarshal(v, d); err != nil {
			return err
		}
		if keep(d) {
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// Enqueue implements Outbox.
func (s *BoltStore) Enqueue(ctx context.Context, d *Delivery) error {
	return s.db.Update(func(tx *bbolt.Tx) error { return putDelivery(tx, d) })
}

// Claim implements queue.Store.
func (s *BoltStore) Claim(ctx context.Context, now time.Time, n int, skip func(id string) bool) ([]*Delivery, error) {
	var out []*Delivery
	limit := binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano())+1)
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketDue).Cursor()
		for k, _ := c.First(); k != nil && len(out) < n && bytes.Compare(k, limit) < 0; k, _ = c.Next() {
			if skip(string(k[8:])) {
				continue
			}
			d, err := getDelivery(tx, k[8:])
			if err != nil {
				return err
			}
			if d != nil {
				out = append(out, d)
			}
		}
		return nil
	})
	return out, err
}

// Reschedule implements queue.Store.
func (s *BoltStore) Reschedule(ctx context.Context, id string, a queue.Attempt) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		d, err := getDelivery(tx, []byte(id))
		if err != nil {
			return err
		}
		if d == nil {
			return queue.ErrGone
		}
		if err := dropDelivery(tx, d); err != nil {
			return err
		}
		d.attempt(a)
		return putDelivery(tx, d)
	})
}

// Complete implements queue.Completer.
func (s *BoltStore) Complete(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		for _, id := range ids {
			d, err := getDelivery(tx, []byte(id))
			if err != nil {
				return err
			}
			if d == nil {
				continue
			}
			if err := dropDelivery(tx, d); err != nil {
				return err
			}
		}
		return nil
	})
}

// Pending implements Outbox.
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

// Deliveries implements Outbox.
func (s *BoltStore) Deliveries(ctx context.Context, shareID string) ([]*Delivery, error) {
	return s.deliveries(func(d *Delivery) bool { return d.ShareID == shareID })
}

// AllDeliveries implements DeliveryLister.
func (s *BoltStore) AllDeliveries(ctx context.Context) ([]*Delivery, error) {
	return s.deliveries(func(*Delivery) bool { return true })
}

// deliveries returns the deliveries keep selects, oldest first.
func (s *BoltStore) deliveries(keep func(*Delivery) bool) ([]*Delivery, error) {
	var out []*Delivery
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		out, err = deliveriesWhere(tx, keep)
		return err
	})
	slices.SortFunc(out, byCreation)
	return out, err
}
