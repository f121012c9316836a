package chat

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/internal/boltx"
	"github.com/chatgate/chatgate/internal/decodecache"
)

var (
	bucketApps    = []byte("chat.apps")    // team\0appId -> App
	bucketConvs   = []byte("chat.convs")   // team\0app\0chatId -> Conversation
	bucketRecords = []byte("chat.records") // team\0app\0chatId\0 + seq -> Record
)

// BoltStore keeps apps and history in a bbolt database, in the chat.*
// buckets of the file the other domains share.
//
// AppendTurn, which every chat with a chatId makes, shares commits among
// concurrent calls (boltx.Group), as the ledger's records do, rather than
// adding a commit of its own to each chat.
type BoltStore struct {
	db    *bbolt.DB
	turns *boltx.Group
	apps  decodecache.Cache[App] // decoded apps, checked against the stored bytes
}

// NewBoltStore returns a store on db, creating its buckets if needed.
func NewBoltStore(db *bbolt.DB) (*BoltStore, error) {
	if err := boltx.EnsureBuckets(db, bucketApps, bucketConvs, bucketRecords); err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	if err := db.Update(migrateAppKeys); err != nil {
		return nil, fmt.Errorf("chat: moving apps under their teams: %w", err)
	}
	return &BoltStore{db: db, turns: &boltx.Group{DB: db}, apps: decodecache.Cache[App]{Clone: cloneApp}}, nil
}

// migrateAppKeys moves apps stored by id alone, as files written before
// app ids were scoped to teams hold them, to team\0id. Ids never hold NUL,
// so a key without one is of the old layout; running it again finds none.
func migrateAppKeys(tx *bbolt.Tx) error {
	b := tx.Bucket(bucketApps)
	var old [][]byte
	err := b.ForEach(func(k, _ []byte) error {
		if !bytes.Contains(k, []byte{0}) {
			old = append(old, slices.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range old {
		var a App
		if err := json.Unmarshal(b.Get(k), &a); err != nil {
			return fmt.Errorf("decode app %s: %w", k, err)
		}
		team := cmp.Or(a.TeamID, auth.DefaultTeam)
		if err := b.Put([]byte(appKey(team, string(k))), b.Get(k)); err != nil {
			return err
		}
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func (s *BoltStore) view(ctx context.Context, fn func(*bbolt.Tx) error) error {
	return boltx.View(ctx, s.db, fn)
}

func (s *BoltStore) update(ctx context.Context, fn func(*bbolt.Tx) error) error {
	return boltx.Update(ctx, s.db, fn)
}

// PutApp implements AppStore.
func (s *BoltStore) PutApp(ctx context.Context, a *App) error {
	return s.update(ctx, func(tx *bbolt.Tx) error {
		return boltx.PutJSON(tx.Bucket(bucketApps), []byte(appKey(a.TeamID, a.ID)), a)
	})
}

// App implements AppStore.
func (s *BoltStore) App(ctx context.Context, team, id string) (*App, error) {
	var a *App
	key := appKey(team, id)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketApps).Get([]byte(key))
		if raw == nil {
			return ErrAppNotFound
		}
		var ok bool
		if a, ok = s.apps.Get(key, raw); ok {
			return nil
		}
		a = new(App)
		if err := json.Unmarshal(raw, a); err != nil {
			return fmt.Errorf("decode %s: %w", key, err)
		}
		s.apps.Put(key, raw, a)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Apps implements AppStore.
func (s *BoltStore) Apps(ctx context.Context, team string) ([]*App, error) {
	var out []*App
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var prefix []byte
		if team != "" {
			prefix = []byte(team + "\x00")
		}
		cur := tx.Bucket(bucketApps).Cursor()
		for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			a := new(App)
			if err := json.Unmarshal(v, a); err != nil {
				return fmt.Errorf("decode app %q: %w", k, err)
			}
			out = append(out, a)
		}
		return nil
	})
	if team == "" { // keys order by team first; the contract is by id
		slices.SortStableFunc(out, func(a, b *App) int { return cmp.Compare(a.ID, b.ID) })
	}
	return out, err
}

// DeleteApp implements AppStore.
func (s *BoltStore) DeleteApp(ctx context.Context, team, id string) error {
	return s.update(ctx, func(tx *bbolt.Tx) error {
		key := []byte(appKey(team, id))
		if tx.Bucket(bucketApps).Get(key) == nil {
			return ErrAppNotFound
		}
		prefix := append(slices.Clone(key), 0)
		for _, b := range [][]byte{bucketConvs, bucketRecords} {
			if err := deletePrefix(tx.Bucket(b), prefix); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketApps).Delete(key)
	})
}

func deletePrefix(b *bbolt.Bucket, prefix []byte) error {
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

func recordPrefix(team, app, chatID string) []byte {
	return []byte(convKey(team, app, chatID) + "\x00")
}

// Conversation implements HistoryStore.
func (s *BoltStore) Conversation(ctx context.Context, team, app, chatID string, limit int) (*Conversation, []Record, error) {
	c := new(Conversation)
	var recs []Record
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		ok, err := boltx.GetJSON(tx.Bucket(bucketConvs), []byte(convKey(team, app, chatID)), c)
		if err != nil {
			return err
		}
		if !ok {
			return ErrChatNotFound
		}
		prefix := recordPrefix(team, app, chatID)
		end := append(slices.Clone(prefix[:len(prefix)-1]), 1) // the first key past the prefix
		cur := tx.Bucket(bucketRecords).Cursor()
		k, v := cur.Seek(end)
		if k == nil {
			k, v = cur.Last()
		} else {
			k, v = cur.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && (limit <= 0 || len(recs) < limit); k, v = cur.Prev() {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode record: %w", err)
			}
			recs = append(recs, r)
		}
		slices.Reverse(recs)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return c, recs, nil
}

// AppendTurn implements HistoryStore.
func (s *BoltStore) AppendTurn(ctx context.Context, c *Conversation, recs []Record) error {
	// The transaction may be shared with other turns': the refusal comes
	// before anything is written, so a refused turn costs no one a retry.
	return s.turns.Update(ctx, func(tx *bbolt.Tx) error {
		key := []byte(convKey(c.TeamID, c.AppID, c.ChatID))
		var old Conversation
		exists, err := boltx.GetJSON(tx.Bucket(bucketConvs), key, &old)
		if err != nil {
			return err
		}
		cc := *c
		cc.Messages = old.Messages + len(recs)
		if exists { // what updateHistory set stays
			if old.CustomUID != c.CustomUID {
				return ErrOtherEndUser
			}
			cc.CustomTitle, cc.Top = old.CustomTitle, old.Top
		}
		prefix := recordPrefix(c.TeamID, c.AppID, c.ChatID)
		rb := tx.Bucket(bucketRecords)
		for i, r := range recs {
			k := append(slices.Clone(prefix), boltx.Seq(uint64(old.Messages+i))...)
			if err := boltx.PutJSON(rb, k, r); err != nil {
				return err
			}
		}
		return boltx.PutJSON(tx.Bucket(bucketConvs), key, cc)
	})
}

// Conversations implements HistoryStore.
func (s *BoltStore) Conversations(ctx context.Context, team, app string, offset, limit int) ([]Conversation, int, error) {
	return s.SearchConversations(ctx, team, app, ConversationFilter{}, offset, limit)
}

// SearchConversations implements HistorySearcher.
func (s *BoltStore) SearchConversations(ctx context.Context, team, app string, f ConversationFilter, offset, limit int) ([]Conversation, int, error) {
	var all []Conversation
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		prefix := []byte(team + "\x00" + app + "\x00")
		cur := tx.Bucket(bucketConvs).Cursor()
		for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			var c Conversation
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decode conversation: %w", err)
			}
			if f.Match(&c) {
				all = append(all, c)
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	sortConversations(all)
	lo, hi := pageBounds(len(all), offset, limit)
	return all[lo:hi], len(all), nil
}

// Records implements HistoryStore.
func (s *BoltStore) Records(ctx context.Context, team, app, chatID string, offset, limit int) ([]Record, int, error) {
	var (
		out   []Record
		total int
	)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var c Conversation
		ok, err := boltx.GetJSON(tx.Bucket(bucketConvs), []byte(convKey(team, app, chatID)), &c)
		if err != nil {
			return err
		}
		if !ok {
			return ErrChatNotFound
		}
		total = c.Messages
		lo, hi := pageBounds(total, offset, limit)
		prefix := recordPrefix(team, app, chatID)
		cur := tx.Bucket(bucketRecords).Cursor()
		start := append(slices.Clone(prefix), boltx.Seq(uint64(lo))...)
		for k, v := cur.Seek(start); k != nil && bytes.HasPrefix(k, prefix) && len(out) < hi-lo; k, v = cur.Next() {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode record: %w", err)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, total, err
}

// DeleteConversation implements HistoryStore.
func (s *BoltStore) DeleteConversation(ctx context.Context, team, app, chatID string) error {
	return s.update(ctx, func(tx *bbolt.Tx) error {
		key := []byte(convKey(team, app, chatID))
		if tx.Bucket(bucketConvs).Get(key) == nil {
			return ErrChatNotFound
		}
		if err := deletePrefix(tx.Bucket(bucketRecords), recordPrefix(team, app, chatID)); err != nil {
			return err
		}
		return tx.Bucket(bucketConvs).Delete(key)
	})
}

// recordKey is the key of a conversation's record at seq.
func recordKey(team, app, chatID string, seq int) []byte {
	return append(recordPrefix(team, app, chatID), boltx.Seq(uint64(seq))...)
}

// eachRecord calls fn with the seq and value of each of a conversation's
// records, in order, after loading the conversation into c; it returns
// ErrChatNotFound for a conversation that does not exist.
func eachRecord(tx *bbolt.Tx, team, app, chatID string, c *Conversation, fn func(seq int, v []byte) error) error {
	ok, err := boltx.GetJSON(tx.Bucket(bucketConvs), []byte(convKey(team, app, chatID)), c)
	if err != nil {
		return err
	}
	if !ok {
		return ErrChatNotFound
	}
	prefix := recordPrefix(team, app, chatID)
	cur := tx.Bucket(bucketRecords).Cursor()
	seq := 0
	for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		if err := fn(seq, v); err != nil {
			return err
		}
		seq++
	}
	return nil
}

// dataIDOf reads only a record's dataId.
func dataIDOf(v []byte) (string, error) {
	var r struct {
		DataID string `json:"dataId"`
	}
	if err := json.Unmarshal(v, &r); err != nil {
		return "", fmt.Errorf("decode record: %w", err)
	}
	return r.DataID, nil
}

// Record implements HistorySearcher.
func (s *BoltStore) Record(ctx context.Context, team, app, chatID, dataID string) (*Record, error) {
	var found *Record
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var c Conversation
		return eachRecord(tx, team, app, chatID, &c, func(_ int, v []byte) error {
			if found != nil {
				return nil
			}
			id, err := dataIDOf(v)
			if err != nil || id != dataID {
				return err
			}
			found = new(Record)
			return json.Unmarshal(v, found)
		})
	})
	if err == nil && found == nil {
		err = ErrRecordNotFound
	}
	if err != nil {
		return nil, err
	}
	return found, nil
}

// UpdateConversation implements HistoryEditor.
func (s *BoltStore) UpdateConversation(ctx context.Context, team, app, chatID string, u ConversationUpdate) error {
	return s.update(ctx, func(tx *bbolt.Tx) error {
		key := []byte(convKey(team, app, chatID))
		var c Conversation
		ok, err := boltx.GetJSON(tx.Bucket(bucketConvs), key, &c)
		if err != nil {
			return err
		}
		if !ok {
			return ErrChatNotFound
		}
		if u.CustomTitle != nil {
			c.CustomTitle = *u.CustomTitle
		}
		if u.Top != nil {
			c.Top = *u.Top
		}
		return boltx.PutJSON(tx.Bucket(bucketConvs), key, c)
	})
}

// DeleteConversations implements HistoryEditor.
func (s *BoltStore) DeleteConversations(ctx context.Context, team, app string, f ConversationFilter) (int, error) {
	n := 0
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		n = 0
		prefix := []byte(team + "\x00" + app + "\x00")
		var doomed []string
		cur := tx.Bucket(bucketConvs).Cursor()
		for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			var c Conversation
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decode conversation: %w", err)
			}
			if f.Match(&c) {
				doomed = append(doomed, c.ChatID)
			}
		}
		for _, chatID := range doomed {
			if err := deletePrefix(tx.Bucket(bucketRecords), recordPrefix(team, app, chatID)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketConvs).Delete([]byte(convKey(team, app, chatID))); err != nil {
				return err
			}
		}
		n = len(doomed)
		return nil
	})
	return n, err
}

// DeleteRecord implements HistoryEditor. The records after the removed
// ones move down, so that seqs stay 0 to messages-1, as AppendTurn and
// Records count on.
func (s *BoltStore) DeleteRecord(ctx context.Context, team, app, chatID, dataID string) error {
	return s.update(ctx, func(tx *bbolt.Tx) error {
		var (
			c     Conversation
			first = -1
			kept  [][]byte // the records from first on that stay
		)
		err := eachRecord(tx, team, app, chatID, &c, func(seq int, v []byte) error {
			id, err := dataIDOf(v)
			switch {
			case err != nil:
				return err
			case id == dataID:
				if first < 0 {
					first = seq
				}
			case first >= 0:
				kept = append(kept, slices.Clone(v))
			}
			return nil
		})
		if err != nil {
			return err
		}
		if first < 0 {
			return ErrRecordNotFound
		}
		rb := tx.Bucket(bucketRecords)
		for seq := first; seq < c.Messages; seq++ {
			if err := rb.Delete(recordKey(team, app, chatID, seq)); err != nil {
				return err
			}
		}
		for i, v := range kept {
			if err := rb.Put(recordKey(team, app, chatID, first+i), v); err != nil {
				return err
			}
		}
		c.Messages = first + len(kept)
		return boltx.PutJSON(tx.Bucket(bucketConvs), []byte(convKey(team, app, chatID)), c)
	})
}

// SetFeedback implements HistoryEditor.
func (s *BoltStore) SetFeedback(ctx context.Context, team, app, chatID, dataID string, fb Feedback) error {
	return s.update(ctx, func(tx *bbolt.Tx) error {
		var (
			c     Conversation
			found []int
		)
		err := eachRecord(tx, team, app, chatID, &c, func(seq int, v []byte) error {
			id, err := dataIDOf(v)
			if err == nil && id == dataID {
				found = append(found, seq)
			}
			return err
		})
		if err != nil {
			return err
		}
		if len(found) == 0 {
			return ErrRecordNotFound
		}
		rb := tx.Bucket(bucketRecords)
		for _, seq := range found {
			k := recordKey(team, app, chatID, seq)
			var r Record
			if _, err := boltx.GetJSON(rb, k, &r); err != nil {
				return err
			}
			r.UserGoodFeedback, r.UserBadFeedback = fb.Good, fb.Bad
			if err := boltx.PutJSON(rb, k, r); err != nil {
				return err
			}
		}
		return nil
	})
}
