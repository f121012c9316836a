package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/chattest"
)

func TestMemoryStore(t *testing.T) {
	chattest.TestStore(t, func(t *testing.T) chattest.Store { return chat.NewMemoryStore() })
}

func TestBoltStore(t *testing.T) {
	t.Run("Store", func(t *testing.T) {
		chattest.TestStore(t, func(t *testing.T) chattest.Store {
			s, _ := openBolt(t)
			return s
		})
	})
	t.Run("Reopen", func(t *testing.T) { chattest.TestReopen(t, openBolt) })
}

// openBolt returns a BoltStore on a new file, and a func that closes the
// file and opens a store on it again.
func openBolt(t *testing.T) (chattest.Store, func() chattest.Store) {
	path := filepath.Join(t.TempDir(), "chat.db")
	var db *bbolt.DB
	open := func() chattest.Store {
		if db != nil {
			db.Close()
		}
		var err error
		if db, err = bbolt.Open(path, 0o600, nil); err != nil {
			t.Fatal(err)
		}
		s, err := chat.NewBoltStore(db)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Cleanup(func() { db.Close() })
	return open(), open
}

var st0 = time.Date(2026, 3, 4, 5, 6, 7, 890123456, time.UTC)

// A file written before app ids were scoped to teams keeps apps by id
// alone. NewBoltStore moves them under their teams: they are found by
// team and id, listed, deletable with their history, and opening the file
// again changes nothing more.
func TestBoltStoreMigratesAppsToTeams(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chat.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := []chat.App{{ID: "main", TeamID: "default", Name: "Main", Model: "extractive", CreateTime: st0, UpdateTime: st0},
		{ID: "sales", TeamID: "t", Name: "Sales", Model: "extractive", DatasetIDs: []string{"d"}, CreateTime: st0, UpdateTime: st0}}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("chat.apps"))
		if err != nil {
			return err
		}
		for _, a := range old {
			v, _ := json.Marshal(a)
			if err := b.Put([]byte(a.ID), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	for round := range 2 {
		db, err := bbolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := chat.NewBoltStore(db)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range old {
			got, err := s.App(ctx, want.TeamID, want.ID)
			if err != nil || !reflect.DeepEqual(*got, want) {
				t.Fatalf("round %d: App(%s, %s) = %+v, %v; want %+v", round, want.TeamID, want.ID, got, err, want)
			}
		}
		if apps, _ := s.Apps(ctx, "t"); len(apps) != 1 || apps[0].ID != "sales" {
			t.Fatalf("round %d: Apps(t) = %+v", round, apps)
		}
		if _, err := s.App(ctx, "default", "sales"); !errors.Is(err, chat.ErrAppNotFound) {
			t.Fatalf("round %d: team t's app found in team default: %v", round, err)
		}
		var keys []string
		_ = db.View(func(tx *bbolt.Tx) error {
			return tx.Bucket([]byte("chat.apps")).ForEach(func(k, _ []byte) error {
				keys = append(keys, string(k))
				return nil
			})
		})
		if want := []string{"default\x00main", "t\x00sales"}; !slices.Equal(keys, want) {
			t.Fatalf("round %d: keys %q; want %q", round, keys, want)
		}
		db.Close()
	}
}

// BoltStore keeps the apps it decoded, but a read takes the kept copy only
// when the stored bytes are the same: a write through another store on the
// file shows at once.
func TestBoltStoresOnOneFile(t *testing.T) {
	chattest.TestShared(t, func(t *testing.T) (chattest.Store, chattest.Store) {
		db, err := bbolt.Open(filepath.Join(t.TempDir(), "chat.db"), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		reader, err := chat.NewBoltStore(db)
		if err != nil {
			t.Fatal(err)
		}
		writer, err := chat.NewBoltStore(db)
		if err != nil {
			t.Fatal(err)
		}
		return reader, writer
	})
}
