package auth_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/auth/authtest"
)

func TestMemoryStoreConformance(t *testing.T) {
	authtest.TestStore(t, func(t *testing.T) auth.Store { return auth.NewMemoryStore() })
}

// The zero MemoryStore is documented as ready to use.
func TestZeroMemoryStoreConformance(t *testing.T) {
	authtest.TestStore(t, func(t *testing.T) auth.Store { return new(auth.MemoryStore) })
}

func TestBoltStoreConformance(t *testing.T) {
	authtest.TestStore(t, func(t *testing.T) auth.Store {
		s, _ := openBolt(t, filepath.Join(t.TempDir(), "auth.db"))
		return s
	})
}

// openBolt opens (or reopens) the bbolt file at path as a BoltStore, closed
// when the test ends unless the caller closes it first.
func openBolt(t *testing.T, path string) (*auth.BoltStore, *bbolt.DB) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("bbolt.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	s, err := auth.NewBoltStore(db)
	if err != nil {
		t.Fatalf("NewBoltStore: %v", err)
	}
	return s, db
}

func TestBoltStoreSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.db")
	s, db := openBolt(t, path)
	k := &auth.Key{
		ID: "k1", Name: "survivor", TeamID: "team-a", AppID: "app-1",
		Scopes: auth.Scopes{auth.ScopeChat}, Source: auth.SourceImported,
		Limit:      auth.Limit{MaxUsagePoints: 10, RPM: 5, ExpiredTime: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)},
		Hash:       auth.HashKey("survivor-secret"),
		Retired:    []auth.RetiredHash{{Hash: auth.HashKey("old-secret"), Until: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}},
		Hint:       "surv...cret",
		CreateTime: time.Date(2025, 5, 6, 7, 8, 9, 10, time.UTC),
		UpdateTime: time.Date(2025, 5, 6, 7, 8, 9, 10, time.UTC),
		Meta:       map[string]string{"a": "b"},
	}
	if err := s.Create(ctx, k, &auth.AuditEvent{Action: auth.AuditKeyImported, KeyID: "k1", TeamID: "team-a"}); err != nil {
		t.Fatal(err)
	}
	last := time.Date(2025, 6, 1, 0, 0, 0, 123, time.UTC)
	if err := s.AddUsage(ctx, []auth.Usage{{KeyID: "k1", Points: 2.5, LastUsed: last}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, []auth.AuditEvent{{Action: auth.AuditAuthFailed, Reason: "invalid_api_key"}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, _ = openBolt(t, path)
	got, err := s.Get(ctx, "k1")
	if err != nil {
		t.Fatalf("Get after reopen: %v", err)
	}
	if got.Name != k.Name || got.AppID != k.AppID || got.Hash != k.Hash || got.Hint != k.Hint ||
		got.Limit.MaxUsagePoints != 10 || got.Limit.RPM != 5 || !got.Limit.ExpiredTime.Equal(k.Limit.ExpiredTime) ||
		!got.CreateTime.Equal(k.CreateTime) || len(got.Retired) != 1 || got.Retired[0].Hash != k.Retired[0].Hash ||
		got.Meta["a"] != "b" || got.Source != auth.SourceImported {
		t.Fatalf("key after reopen = %+v, want %+v", got, k)
	}
	if got.UsagePoints != 2.5 || !got.LastUsedTime.Equal(last) {
		t.Fatalf("usage after reopen = %v, %v; want 2.5, %v", got.UsagePoints, got.LastUsedTime, last)
	}
	for _, h := range []auth.Hash{k.Hash, k.Retired[0].Hash} {
		if byHash, err := s.GetByHash(ctx, h); err != nil || byHash.ID != "k1" {
			t.Fatalf("GetByHash after reopen = %v, %v", byHash, err)
		}
	}
	evs, err := s.Audit(ctx, auth.AuditQuery{})
	if err != nil || len(evs) != 2 || evs[0].Action != auth.AuditAuthFailed || evs[1].Action != auth.AuditKeyImported {
		t.Fatalf("Audit after reopen = %+v, %v", evs, err)
	}
	// Sequence numbers continue after a reopen instead of starting over.
	if err := s.AppendAudit(ctx, []auth.AuditEvent{{Action: auth.AuditAuthFailed, Reason: "after reopen"}}); err != nil {
		t.Fatal(err)
	}
	evs2, err := s.Audit(ctx, auth.AuditQuery{Limit: 1})
	if err != nil || len(evs2) != 1 || evs2[0].Reason != "after reopen" || evs2[0].Seq <= evs[0].Seq {
		t.Fatalf("event after reopen = %+v (previous newest seq %d), %v", evs2, evs[0].Seq, err)
	}
	// And the unique indexes are still enforced.
	dup := k.Clone()
	dup.ID = "k2"
	if err := s.Create(ctx, dup, nil); !errors.Is(err, auth.ErrHashInUse) {
		t.Fatalf("Create with a stored hash after reopen: err = %v, want ErrHashInUse", err)
	}
	if err := s.Create(ctx, k, nil); !errors.Is(err, auth.ErrKeyExists) {
		t.Fatalf("Create with a stored id after reopen: err = %v, want ErrKeyExists", err)
	}
}

// TestBoltFileHoldsNoSecrets makes keys every way the Manager can and then
// reads the raw database file: no key may appear in it, while the hashes
// that stand for them must (or the test is reading the wrong file).
func TestBoltFileHoldsNoSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chatgate.db")
	store, db := openBolt(t, path)
	e := newEnv(t, store, auth.Options{})

	var secrets []string
	keyOf := map[string]*auth.Key{}
	add := func(k *auth.Key, secret string) {
		t.Helper()
		secrets = append(secrets, secret)
		keyOf[secret] = k
		// The hint shows a few characters around "...": never the key, nor
		// as many characters as the key has.
		shown := strings.Replace(k.Hint, "...", "", 1)
		if k.Hint == secret || strings.Contains(k.Hint, secret) || !strings.Contains(k.Hint, "...") || len(shown) >= len(secret) {
			t.Fatalf("hint %q gives away the key %q", k.Hint, secret)
		}
	}

	created, secret, err := e.mgr.Create(ctx, auth.KeySpec{Name: "generated", AppID: "app-1"})
	if err != nil {
		t.Fatal(err)
	}
	add(created, secret)

	const imported = "sk-user-owned-Import3d-Secret"
	imp, err := e.mgr.Import(ctx, auth.KeySpec{Name: "imported"}, imported)
	if err != nil {
		t.Fatal(err)
	}
	add(imp, imported)

	const short = "s3cR7" // the shortest importable key
	shortKey, err := e.mgr.Import(ctx, auth.KeySpec{Name: "short"}, short)
	if err != nil {
		t.Fatal(err)
	}
	add(shortKey, short)

	// Rotate both with a grace period: old and new secrets are all live.
	for _, k := range []*auth.Key{created, imp} {
		rotated, newSecret, err := e.mgr.Rotate(ctx, "", k.ID, time.Hour, "")
		if err != nil {
			t.Fatal(err)
		}
		add(rotated, newSecret)
	}

	const rootSecret = "root-secret-from-env-0123456789"
	if _, err := e.mgr.EnsureRootKey(ctx, rootSecret); err != nil {
		t.Fatal(err)
	}
	root, err := store.Get(ctx, auth.RootKeyID)
	if err != nil {
		t.Fatal(err)
	}
	add(root, rootSecret)

	const cfgSecret = "config-file-secret-abcdef"
	if err := e.mgr.SyncConfig(ctx, []auth.ConfigKey{{Account: "bot", Enabled: true, Secret: cfgSecret}}); err != nil {
		t.Fatal(err)
	}
	cfg, err := store.Get(ctx, auth.ConfigKeyID("bot"))
	if err != nil {
		t.Fatal(err)
	}
	add(cfg, cfgSecret)

	// Every secret authenticates, so usage and audit records are written too.
	for _, s := range secrets {
		if _, err := e.authn.Authenticate(ctx, s, loopback); err != nil {
			t.Fatalf("Authenticate(%q): %v", s, err)
		}
		// A failed attempt with a near miss lands in the audit trail.
		_, _ = e.authn.Authenticate(ctx, s+"x", loopback)
	}
	if err := e.authn.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		h := auth.HashKey(s)
		if !bytes.Contains(raw, h[:]) {
			t.Fatalf("the raw hash of %q is not in the file: the test is not reading the store", keyOf[s].Name)
		}
		if !bytes.Contains(raw, []byte(h.String())) {
			t.Fatalf("the hex hash of %q is not in the file", keyOf[s].Name)
		}
		if bytes.Contains(raw, []byte(s)) {
			t.Fatalf("the file holds the plaintext of key %q", keyOf[s].Name)
		}
		if bytes.Contains(raw, []byte(hex.EncodeToString([]byte(s)))) {
			t.Fatalf("the file holds the hex-encoded key %q", keyOf[s].Name)
		}
	}
}

// A trail longer than one trimming transaction removes (10,000 events) is
// trimmed whole, and the newest events and the counter of seqs survive it.
func TestBoltStoreTrimsInBatches(t *testing.T) {
	s, _ := openBolt(t, filepath.Join(t.TempDir(), "auth.db"))
	const total = 25_000
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	evs := make([]auth.AuditEvent, total)
	for i := range evs {
		evs[i] = auth.AuditEvent{Time: t0.Add(time.Duration(i) * time.Second), Action: auth.AuditAuthFailed, Reason: "invalid_api_key", Count: i}
	}
	if err := s.AppendAudit(ctx, evs); err != nil {
		t.Fatal(err)
	}
	n, err := s.TrimAudit(ctx, time.Time{}, 100)
	if err != nil || n != total-100 {
		t.Fatalf("TrimAudit = %d, %v; want %d removed", n, err, total-100)
	}
	got, err := s.Audit(ctx, auth.AuditQuery{Limit: 1000})
	if err != nil || len(got) != 100 || got[0].Count != total-1 || got[99].Count != total-100 {
		t.Fatalf("after the trim: %d events, %v", len(got), err)
	}
	if err := s.AppendAudit(ctx, []auth.AuditEvent{{Time: t0, Action: auth.AuditAuthFailed}}); err != nil {
		t.Fatal(err)
	}
	if got2, _ := s.Audit(ctx, auth.AuditQuery{Limit: 1}); got2[0].Seq != total+1 {
		t.Fatalf("the next event got seq %d, want %d", got2[0].Seq, total+1)
	}
}

// A trail written before the team index existed is indexed when the store
// opens, so team queries see its old events.
func TestBoltStoreIndexesOldTrail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.db")
	s, db := openBolt(t, path)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var evs []auth.AuditEvent
	for i := range 50 {
		team := []string{"a", "b", ""}[i%3]
		evs = append(evs, auth.AuditEvent{Time: t0, Action: auth.AuditKeyCreated, TeamID: team, Count: i})
	}
	if err := s.AppendAudit(ctx, evs); err != nil {
		t.Fatal(err)
	}
	// as the trail of an older version: no index
	if err := db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte("auth.audit.team")) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ = openBolt(t, path)
	got, err := s.Audit(ctx, auth.AuditQuery{TeamID: "b", Limit: 100})
	if err != nil || len(got) != 17 || got[0].Count != 49 || got[16].Count != 1 {
		t.Fatalf("team b after reindexing: %d events, %v", len(got), err)
	}
}
