// Package authtest holds a conformance test for implementations of
// auth.Store: every interface it is made of (KeyReader, KeyWriter,
// KeyLister, UsageWriter, AuditWriter, AuditReader, AuditTrimmer), checked
// together because each reads what the others write. A store passes when it
// behaves as the interfaces document: changes and their audit events are
// written together, ids and hashes are unique, reads return copies, and it
// is safe for concurrent use. The suite knows nothing of the backend, so a
// store on any database can run it.
package authtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chatgate/chatgate/auth"
)

// TestStore runs the conformance suite against the stores open returns. It
// calls open once per subtest, which must return a new, empty store; open
// should register any cleanup with t.Cleanup.
func TestStore(t *testing.T, open func(t *testing.T) auth.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s auth.Store)
	}{
		{"CreateGet", testCreateGet},
		{"CreateDuplicateID", testCreateDuplicateID},
		{"CreateHashInUse", testCreateHashInUse},
		{"Update", testUpdate},
		{"UpdateRotation", testUpdateRotation},
		{"UpdateNotFound", testUpdateNotFound},
		{"UpdateHashInUse", testUpdateHashInUse},
		{"Delete", testDelete},
		{"DeleteNotFound", testDeleteNotFound},
		{"GetNotFound", testGetNotFound},
		{"List", testList},
		{"AddUsage", testAddUsage},
		{"Audit", testAudit},
		{"AuditDefaultLimit", testAuditDefaultLimit},
		{"AuditByTeam", testAuditByTeam},
		{"TrimAuditByAge", testTrimAuditByAge},
		{"TrimAuditByCount", testTrimAuditByCount},
		{"TrimAuditBoth", testTrimAuditBoth},
		{"NilEvent", testNilEvent},
		{"Copies", testCopies},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			if s == nil {
				t.Fatal("open returned a nil store")
			}
			tc.fn(t, s)
		})
	}
}

var bg = context.Background()

// t0 has a sub-second part so that stores which round times are caught:
// microseconds, the finest that Postgres keeps, so that every time the
// suite builds (t0 plus whole seconds and minutes) is one any store can
// hold exactly.
var t0 = time.Date(2025, 1, 2, 3, 4, 5, 678901000, time.UTC)

// newKey returns a fully populated key whose secret is "secret-"+id.
func newKey(id string) *auth.Key {
	return &auth.Key{
		ID:     id,
		Name:   "key " + id,
		TeamID: "team-a",
		Scopes: auth.Scopes{auth.ScopeChat, auth.ScopeDatasetRead},
		Limit: auth.Limit{
			ExpiredTime:    t0.Add(48 * time.Hour),
			MaxUsagePoints: 1000.5,
			RPM:            60,
		},
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
		Source:     auth.SourceGenerated,
		Hash:       secretHash(id),
		Hint:       "cg-abcd...wxyz",
		CreateTime: t0,
		UpdateTime: t0,
		Meta:       map[string]string{"dm_policy": "open"},
	}
}

func secretHash(id string) auth.Hash { return auth.HashKey("secret-" + id) }

func event(action auth.AuditAction, k *auth.Key, reason string) *auth.AuditEvent {
	return &auth.AuditEvent{Time: t0.Add(time.Minute), Action: action, KeyID: k.ID, Hint: k.Hint,
		TeamID: k.TeamID, ActorKeyID: "actor-1", Reason: reason}
}

func mustCreate(t *testing.T, s auth.Store, k *auth.Key) {
	t.Helper()
	if err := s.Create(bg, k, event(auth.AuditKeyCreated, k, "")); err != nil {
		t.Fatalf("Create(%s): %v", k.ID, err)
	}
}

func mustGet(t *testing.T, s auth.Store, id string) *auth.Key {
	t.Helper()
	k, err := s.Get(bg, id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	if k == nil {
		t.Fatalf("Get(%s) returned a nil key and no error", id)
	}
	return k
}

func mustAudit(t *testing.T, s auth.Store, q auth.AuditQuery) []auth.AuditEvent {
	t.Helper()
	evs, err := s.Audit(bg, q)
	if err != nil {
		t.Fatalf("Audit(%+v): %v", q, err)
	}
	return evs
}

func mustList(t *testing.T, s auth.Store, f auth.Filter) []*auth.Key {
	t.Helper()
	ks, err := s.List(bg, f)
	if err != nil {
		t.Fatalf("List(%+v): %v", f, err)
	}
	return ks
}

func ids(ks []*auth.Key) []string {
	out := make([]string, 0, len(ks))
	for _, k := range ks {
		out = append(out, k.ID)
	}
	return out
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

// diffKey describes how got differs from want in the stored fields (usage
// excluded), or returns "". Times are compared as instants; empty and nil
// collections are the same.
func diffKey(got, want *auth.Key) string {
	switch {
	case got == nil:
		return "key is nil"
	case got.ID != want.ID:
		return fmt.Sprintf("ID = %q, want %q", got.ID, want.ID)
	case got.Name != want.Name:
		return fmt.Sprintf("Name = %q, want %q", got.Name, want.Name)
	case got.TeamID != want.TeamID:
		return fmt.Sprintf("TeamID = %q, want %q", got.TeamID, want.TeamID)
	case got.AppID != want.AppID:
		return fmt.Sprintf("AppID = %q, want %q", got.AppID, want.AppID)
	case !slices.Equal(got.Scopes, want.Scopes):
		return fmt.Sprintf("Scopes = %v, want %v", got.Scopes, want.Scopes)
	case !got.Limit.ExpiredTime.Equal(want.Limit.ExpiredTime):
		return fmt.Sprintf("Limit.ExpiredTime = %v, want %v", got.Limit.ExpiredTime, want.Limit.ExpiredTime)
	case got.Limit.MaxUsagePoints != want.Limit.MaxUsagePoints:
		return fmt.Sprintf("Limit.MaxUsagePoints = %v, want %v", got.Limit.MaxUsagePoints, want.Limit.MaxUsagePoints)
	case got.Limit.RPM != want.Limit.RPM:
		return fmt.Sprintf("Limit.RPM = %v, want %v", got.Limit.RPM, want.Limit.RPM)
	case !slices.Equal(got.AllowedIPs, want.AllowedIPs):
		return fmt.Sprintf("AllowedIPs = %v, want %v", got.AllowedIPs, want.AllowedIPs)
	case got.Disabled != want.Disabled:
		return fmt.Sprintf("Disabled = %v, want %v", got.Disabled, want.Disabled)
	case got.Source != want.Source:
		return fmt.Sprintf("Source = %q, want %q", got.Source, want.Source)
	case got.Hash != want.Hash:
		return fmt.Sprintf("Hash = %s, want %s", got.Hash, want.Hash)
	case got.Hint != want.Hint:
		return fmt.Sprintf("Hint = %q, want %q", got.Hint, want.Hint)
	case len(got.Retired) != len(want.Retired):
		return fmt.Sprintf("Retired = %v, want %v", got.Retired, want.Retired)
	case !got.CreateTime.Equal(want.CreateTime):
		return fmt.Sprintf("CreateTime = %v, want %v", got.CreateTime, want.CreateTime)
	case !got.UpdateTime.Equal(want.UpdateTime):
		return fmt.Sprintf("UpdateTime = %v, want %v", got.UpdateTime, want.UpdateTime)
	case !maps.Equal(got.Meta, want.Meta):
		return fmt.Sprintf("Meta = %v, want %v", got.Meta, want.Meta)
	}
	for i := range got.Retired {
		if got.Retired[i].Hash != want.Retired[i].Hash || !got.Retired[i].Until.Equal(want.Retired[i].Until) {
			return fmt.Sprintf("Retired = %v, want %v", got.Retired, want.Retired)
		}
	}
	return ""
}

func checkKey(t *testing.T, what string, got, want *auth.Key) {
	t.Helper()
	if d := diffKey(got, want); d != "" {
		t.Fatalf("%s: %s", what, d)
	}
}

func checkUsage(t *testing.T, what string, k *auth.Key, points float64, last time.Time) {
	t.Helper()
	if k.UsagePoints != points || !k.LastUsedTime.Equal(last) {
		t.Fatalf("%s: usage = %v points, last used %v; want %v, %v", what, k.UsagePoints, k.LastUsedTime, points, last)
	}
}

// sameEvent reports whether e records ev (Seq aside).
func sameEvent(e auth.AuditEvent, ev *auth.AuditEvent) bool {
	return e.Time.Equal(ev.Time) && e.Action == ev.Action && e.KeyID == ev.KeyID && e.Hint == ev.Hint &&
		e.TeamID == ev.TeamID && e.ActorKeyID == ev.ActorKeyID && e.Reason == ev.Reason && e.RemoteIP == ev.RemoteIP &&
		e.Count == ev.Count
}

// checkLastEvent asserts that the store's newest event records ev and that
// the trail grew by exactly one event from before.
func checkLastEvent(t *testing.T, s auth.Store, before int, ev *auth.AuditEvent) {
	t.Helper()
	evs := mustAudit(t, s, auth.AuditQuery{Limit: 1000})
	if len(evs) != before+1 {
		t.Fatalf("audit trail has %d events, want %d: %+v", len(evs), before+1, evs)
	}
	if !sameEvent(evs[0], ev) {
		t.Fatalf("newest audit event = %+v, want %+v", evs[0], *ev)
	}
	if evs[0].Seq == 0 {
		t.Fatalf("newest audit event has no Seq: %+v", evs[0])
	}
}

func auditLen(t *testing.T, s auth.Store) int {
	t.Helper()
	return len(mustAudit(t, s, auth.AuditQuery{Limit: 1000}))
}

func testCreateGet(t *testing.T, s auth.Store) {
	k := newKey("k1")
	k.AppID = "app-1"
	k.Disabled = true
	k.Retired = []auth.RetiredHash{{Hash: auth.HashKey("old-k1"), Until: t0.Add(time.Hour)}}
	ev := event(auth.AuditKeyCreated, k, "made by test")
	if err := s.Create(bg, k, ev); err != nil {
		t.Fatalf("Create: %v", err)
	}
	checkLastEvent(t, s, 0, ev)
	got := mustGet(t, s, "k1")
	checkKey(t, "Get", got, k)
	checkUsage(t, "Get of a new key", got, 0, time.Time{})
	for _, h := range []auth.Hash{k.Hash, k.Retired[0].Hash} {
		got, err := s.GetByHash(bg, h)
		if err != nil {
			t.Fatalf("GetByHash(%s): %v", h, err)
		}
		checkKey(t, "GetByHash", got, k)
	}
	_, err := s.GetByHash(bg, auth.HashKey("some other key"))
	wantErr(t, "GetByHash of an unknown hash", err, auth.ErrKeyNotFound)

	// Usage fields set by the caller are not part of the record.
	k2 := newKey("k2")
	k2.UsagePoints, k2.LastUsedTime = 7, t0
	mustCreate(t, s, k2)
	checkUsage(t, "Get of a key created with usage set", mustGet(t, s, "k2"), 0, time.Time{})
}

func testCreateDuplicateID(t *testing.T, s auth.Store) {
	k := newKey("dup")
	mustCreate(t, s, k)
	n := auditLen(t, s)
	other := newKey("dup")
	other.Name, other.Hash = "impostor", auth.HashKey("a different secret")
	err := s.Create(bg, other, event(auth.AuditKeyCreated, other, ""))
	wantErr(t, "Create of a taken id", err, auth.ErrKeyExists)
	checkKey(t, "Get after a failed Create", mustGet(t, s, "dup"), k)
	if _, err := s.GetByHash(bg, other.Hash); !errors.Is(err, auth.ErrKeyNotFound) {
		t.Fatalf("the failed Create's hash resolves: err = %v", err)
	}
	if got := auditLen(t, s); got != n {
		t.Fatalf("a failed Create wrote an audit event: %d events, want %d", got, n)
	}
}

func testCreateHashInUse(t *testing.T, s auth.Store) {
	a := newKey("a")
	a.Retired = []auth.RetiredHash{{Hash: auth.HashKey("a-retired"), Until: t0.Add(24 * time.Hour)}}
	mustCreate(t, s, a)
	n := auditLen(t, s)
	cases := []struct {
		name string
		edit func(k *auth.Key)
	}{
		{"current hash of another key", func(k *auth.Key) { k.Hash = a.Hash }},
		{"retired hash of another key", func(k *auth.Key) { k.Hash = a.Retired[0].Hash }},
		{"retired hash equal to another key's current", func(k *auth.Key) {
			k.Retired = []auth.RetiredHash{{Hash: a.Hash, Until: t0.Add(time.Hour)}}
		}},
		{"retired hash equal to another key's retired", func(k *auth.Key) {
			k.Retired = []auth.RetiredHash{{Hash: auth.HashKey("b-own-retired"), Until: t0.Add(time.Hour)},
				{Hash: a.Retired[0].Hash, Until: t0.Add(time.Hour)}}
		}},
	}
	for _, c := range cases {
		b := newKey("b")
		c.edit(b)
		err := s.Create(bg, b, event(auth.AuditKeyCreated, b, ""))
		wantErr(t, "Create with "+c.name, err, auth.ErrHashInUse)
		if _, err := s.Get(bg, "b"); !errors.Is(err, auth.ErrKeyNotFound) {
			t.Fatalf("%s: the failed key was stored: err = %v", c.name, err)
		}
		// None of the failed key's own hashes may have been claimed.
		for _, h := range []auth.Hash{secretHash("b"), auth.HashKey("b-own-retired")} {
			if _, err := s.GetByHash(bg, h); !errors.Is(err, auth.ErrKeyNotFound) {
				t.Fatalf("%s: a hash of the failed key resolves: err = %v", c.name, err)
			}
		}
		// And a's hashes still resolve to a.
		for _, h := range []auth.Hash{a.Hash, a.Retired[0].Hash} {
			got, err := s.GetByHash(bg, h)
			if err != nil || got.ID != "a" {
				t.Fatalf("%s: GetByHash of a's hash = %v, %v", c.name, got, err)
			}
		}
		if got := auditLen(t, s); got != n {
			t.Fatalf("%s: a failed Create wrote an audit event", c.name)
		}
	}
	// With every conflict removed, the same key is accepted.
	mustCreate(t, s, newKey("b"))
}

func testUpdate(t *testing.T, s auth.Store) {
	k := newKey("u")
	mustCreate(t, s, k)
	if err := s.AddUsage(bg, []auth.Usage{{KeyID: "u", Points: 3.5, LastUsed: t0.Add(time.Second)}}); err != nil {
		t.Fatalf("AddUsage: %v", err)
	}
	n := auditLen(t, s)
	up := newKey("u")
	up.Name, up.TeamID, up.AppID = "renamed", "team-b", "app-9"
	up.Scopes = auth.Scopes{auth.ScopeAdmin}
	up.Limit = auth.Limit{MaxUsagePoints: 5, RPM: 1}
	up.AllowedIPs = []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}
	up.Disabled = true
	up.Source = auth.SourceImported
	up.Hint = "new...hint"
	up.UpdateTime = t0.Add(time.Hour)
	up.Meta = map[string]string{"group_policy": "closed"}
	up.UsagePoints = 99 // ignored: usage is kept by the store
	ev := event(auth.AuditKeyUpdated, up, "name,scopes")
	if err := s.Update(bg, up, ev); err != nil {
		t.Fatalf("Update: %v", err)
	}
	checkLastEvent(t, s, n, ev)
	got := mustGet(t, s, "u")
	checkKey(t, "Get after Update", got, up)
	checkUsage(t, "Get after Update", got, 3.5, t0.Add(time.Second))
	byHash, err := s.GetByHash(bg, up.Hash)
	if err != nil {
		t.Fatalf("GetByHash after Update: %v", err)
	}
	checkKey(t, "GetByHash after Update", byHash, up)
	if ks := mustList(t, s, auth.Filter{TeamID: "team-a"}); len(ks) != 0 {
		t.Fatalf("List of the old team after Update = %v, want none", ids(ks))
	}
	if ks := mustList(t, s, auth.Filter{TeamID: "team-b"}); len(ks) != 1 || ks[0].ID != "u" {
		t.Fatalf("List of the new team after Update = %v, want [u]", ids(ks))
	}
}

func testUpdateRotation(t *testing.T, s auth.Store) {
	h0, h1, h2, h3 := auth.HashKey("gen-0"), auth.HashKey("gen-1"), auth.HashKey("gen-2"), auth.HashKey("gen-3")
	k := newKey("r")
	k.Hash = h1
	k.Retired = []auth.RetiredHash{{Hash: h0, Until: t0.Add(time.Hour)}}
	mustCreate(t, s, k)

	// Rotate: h2 is current, h1 retired, h0 dropped.
	r := newKey("r")
	r.Hash = h2
	r.Retired = []auth.RetiredHash{{Hash: h1, Until: t0.Add(2 * time.Hour)}}
	if err := s.Update(bg, r, event(auth.AuditKeyRotated, r, "grace=2h")); err != nil {
		t.Fatalf("Update (rotate): %v", err)
	}
	for _, h := range []auth.Hash{h1, h2} {
		got, err := s.GetByHash(bg, h)
		if err != nil {
			t.Fatalf("GetByHash after rotation: %v", err)
		}
		checkKey(t, "GetByHash after rotation", got, r)
	}
	_, err := s.GetByHash(bg, h0)
	wantErr(t, "GetByHash of a dropped retired hash", err, auth.ErrKeyNotFound)

	// Another key may now use the dropped hash, but not the retired one.
	o := newKey("o")
	o.Hash = h1
	wantErr(t, "Create with a hash retired by Update", s.Create(bg, o, nil), auth.ErrHashInUse)
	o.Hash = h0
	mustCreate(t, s, o)

	// Rotate without grace: only h3 resolves to r.
	r2 := newKey("r")
	r2.Hash = h3
	if err := s.Update(bg, r2, event(auth.AuditKeyRotated, r2, "grace=0s")); err != nil {
		t.Fatalf("Update (rotate without grace): %v", err)
	}
	for _, h := range []auth.Hash{h1, h2} {
		_, err := s.GetByHash(bg, h)
		wantErr(t, "GetByHash of a hash dropped by Update", err, auth.ErrKeyNotFound)
	}
	got, err := s.GetByHash(bg, h3)
	if err != nil || got.ID != "r" {
		t.Fatalf("GetByHash(new hash) = %v, %v", got, err)
	}
	if got, err := s.GetByHash(bg, h0); err != nil || got.ID != "o" {
		t.Fatalf("GetByHash(h0) = %v, %v; want key o", got, err)
	}
}

func testUpdateNotFound(t *testing.T, s auth.Store) {
	mustCreate(t, s, newKey("present"))
	n := auditLen(t, s)
	k := newKey("missing")
	wantErr(t, "Update of a missing key", s.Update(bg, k, event(auth.AuditKeyUpdated, k, "")), auth.ErrKeyNotFound)
	if _, err := s.Get(bg, "missing"); !errors.Is(err, auth.ErrKeyNotFound) {
		t.Fatalf("Update created the missing key: err = %v", err)
	}
	if _, err := s.GetByHash(bg, k.Hash); !errors.Is(err, auth.ErrKeyNotFound) {
		t.Fatalf("Update of a missing key claimed its hash: err = %v", err)
	}
	if got := auditLen(t, s); got != n {
		t.Fatalf("a failed Update wrote an audit event")
	}
}

func testUpdateHashInUse(t *testing.T, s auth.Store) {
	a := newKey("a")
	a.Retired = []auth.RetiredHash{{Hash: auth.HashKey("a-retired"), Until: t0.Add(time.Hour)}}
	b := newKey("b")
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	n := auditLen(t, s)
	for _, h := range []auth.Hash{a.Hash, a.Retired[0].Hash} {
		for _, asRetired := range []bool{false, true} {
			up := newKey("b")
			up.Name = "changed"
			if asRetired {
				up.Hash = auth.HashKey("b-new")
				up.Retired = []auth.RetiredHash{{Hash: h, Until: t0.Add(time.Hour)}}
			} else {
				up.Hash = h
			}
			err := s.Update(bg, up, event(auth.AuditKeyUpdated, up, ""))
			wantErr(t, "Update onto another key's hash", err, auth.ErrHashInUse)
			checkKey(t, "Get after a failed Update", mustGet(t, s, "b"), b)
			if got, err := s.GetByHash(bg, b.Hash); err != nil || got.ID != "b" {
				t.Fatalf("after a failed Update, b's hash = %v, %v", got, err)
			}
			if _, err := s.GetByHash(bg, auth.HashKey("b-new")); !errors.Is(err, auth.ErrKeyNotFound) {
				t.Fatalf("a failed Update claimed a new hash: err = %v", err)
			}
			if got, err := s.GetByHash(bg, h); err != nil || got.ID != "a" {
				t.Fatalf("after a failed Update, a's hash = %v, %v", got, err)
			}
		}
	}
	if got := auditLen(t, s); got != n {
		t.Fatalf("failed Updates wrote %d audit events", got-n)
	}
	// A key may keep or re-list its own hashes.
	up := newKey("a")
	up.Retired = append(slices.Clone(a.Retired), auth.RetiredHash{Hash: auth.HashKey("a-more"), Until: t0})
	if err := s.Update(bg, up, nil); err != nil {
		t.Fatalf("Update keeping the key's own hashes: %v", err)
	}
}

func testDelete(t *testing.T, s auth.Store) {
	k := newKey("d")
	k.Retired = []auth.RetiredHash{{Hash: auth.HashKey("d-retired"), Until: t0.Add(time.Hour)}}
	mustCreate(t, s, k)
	mustCreate(t, s, newKey("keep"))
	if err := s.AddUsage(bg, []auth.Usage{{KeyID: "d", Points: 4, LastUsed: t0}}); err != nil {
		t.Fatalf("AddUsage: %v", err)
	}
	n := auditLen(t, s)
	ev := event(auth.AuditKeyRevoked, k, "")
	if err := s.Delete(bg, "d", ev); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	checkLastEvent(t, s, n, ev)
	_, err := s.Get(bg, "d")
	wantErr(t, "Get after Delete", err, auth.ErrKeyNotFound)
	for _, h := range []auth.Hash{k.Hash, k.Retired[0].Hash} {
		_, err := s.GetByHash(bg, h)
		wantErr(t, "GetByHash after Delete", err, auth.ErrKeyNotFound)
	}
	if got := ids(mustList(t, s, auth.Filter{})); !slices.Equal(got, []string{"keep"}) {
		t.Fatalf("List after Delete = %v, want [keep]", got)
	}
	// The id and hashes are free again, and the usage went with the key.
	mustCreate(t, s, k)
	checkUsage(t, "a key recreated after Delete", mustGet(t, s, "d"), 0, time.Time{})
}

func testDeleteNotFound(t *testing.T, s auth.Store) {
	mustCreate(t, s, newKey("present"))
	n := auditLen(t, s)
	k := newKey("missing")
	wantErr(t, "Delete of a missing key", s.Delete(bg, "missing", event(auth.AuditKeyRevoked, k, "")), auth.ErrKeyNotFound)
	if got := auditLen(t, s); got != n {
		t.Fatalf("a failed Delete wrote an audit event")
	}
	mustGet(t, s, "present")
}

func testGetNotFound(t *testing.T, s auth.Store) {
	_, err := s.Get(bg, "nope")
	wantErr(t, "Get on an empty store", err, auth.ErrKeyNotFound)
	_, err = s.GetByHash(bg, auth.HashKey("nope"))
	wantErr(t, "GetByHash on an empty store", err, auth.ErrKeyNotFound)
	if ks := mustList(t, s, auth.Filter{}); len(ks) != 0 {
		t.Fatalf("List on an empty store = %v", ids(ks))
	}
	if evs := mustAudit(t, s, auth.AuditQuery{}); len(evs) != 0 {
		t.Fatalf("Audit on an empty store = %+v", evs)
	}
	mustCreate(t, s, newKey("x"))
	_, err = s.Get(bg, "X")
	wantErr(t, "Get with an id differing in case", err, auth.ErrKeyNotFound)
	_, err = s.Get(bg, "")
	wantErr(t, "Get with an empty id", err, auth.ErrKeyNotFound)
}

func testList(t *testing.T, s auth.Store) {
	type spec struct {
		id, team, app string
		src           auth.Source
		created       time.Duration
	}
	// Created out of time order; two share a creation time, ordered by id.
	specs := []spec{
		{"k5", "t1", "", auth.SourceConfig, 5},
		{"k1", "t1", "app-1", auth.SourceGenerated, 1},
		{"k3b", "t2", "app-1", auth.SourceImported, 3},
		{"k3a", "t1", "app-2", auth.SourceGenerated, 3},
		{"k4", "t2", "", auth.SourceRoot, 4},
		{"k2", "t1", "app-1", auth.SourceImported, 2},
	}
	for _, sp := range specs {
		k := newKey(sp.id)
		k.TeamID, k.AppID, k.Source = sp.team, sp.app, sp.src
		k.CreateTime = t0.Add(sp.created * time.Minute)
		mustCreate(t, s, k)
	}
	if err := s.AddUsage(bg, []auth.Usage{{KeyID: "k2", Points: 2, LastUsed: t0.Add(time.Hour)}}); err != nil {
		t.Fatalf("AddUsage: %v", err)
	}
	cases := []struct {
		f    auth.Filter
		want []string
	}{
		{auth.Filter{}, []string{"k1", "k2", "k3a", "k3b", "k4", "k5"}},
		{auth.Filter{TeamID: "t1"}, []string{"k1", "k2", "k3a", "k5"}},
		{auth.Filter{TeamID: "t2"}, []string{"k3b", "k4"}},
		{auth.Filter{AppID: "app-1"}, []string{"k1", "k2", "k3b"}},
		{auth.Filter{Source: auth.SourceGenerated}, []string{"k1", "k3a"}},
		{auth.Filter{Source: auth.SourceRoot}, []string{"k4"}},
		{auth.Filter{TeamID: "t1", AppID: "app-1"}, []string{"k1", "k2"}},
		{auth.Filter{TeamID: "t1", AppID: "app-1", Source: auth.SourceImported}, []string{"k2"}},
		{auth.Filter{TeamID: "t2", Source: auth.SourceConfig}, []string{}},
		{auth.Filter{TeamID: "t3"}, []string{}},
		{auth.Filter{AppID: "app-3"}, []string{}},
	}
	for _, c := range cases {
		got := mustList(t, s, c.f)
		if !slices.Equal(ids(got), c.want) {
			t.Fatalf("List(%+v) = %v, want %v", c.f, ids(got), c.want)
		}
		for _, k := range got {
			checkKey(t, "List", k, mustGet(t, s, k.ID))
			if k.ID == "k2" {
				checkUsage(t, "List", k, 2, t0.Add(time.Hour))
			}
		}
	}
}

func testAddUsage(t *testing.T, s auth.Store) {
	k := newKey("u")
	mustCreate(t, s, k)
	mustCreate(t, s, newKey("other"))
	steps := []struct {
		us         []auth.Usage
		wantPoints float64
		wantLast   time.Time
	}{
		{[]auth.Usage{{KeyID: "u", Points: 1.25, LastUsed: t0.Add(10 * time.Second)}}, 1.25, t0.Add(10 * time.Second)},
		// Several entries for one key in a batch all count; the latest time wins.
		{[]auth.Usage{
			{KeyID: "u", Points: 2, LastUsed: t0.Add(30 * time.Second)},
			{KeyID: "u", Points: 0.5, LastUsed: t0.Add(20 * time.Second)},
		}, 3.75, t0.Add(30 * time.Second)},
		// An older time does not move last-used back; a zero time leaves it.
		{[]auth.Usage{{KeyID: "u", Points: 1, LastUsed: t0}}, 4.75, t0.Add(30 * time.Second)},
		{[]auth.Usage{{KeyID: "u", Points: 1}}, 5.75, t0.Add(30 * time.Second)},
		// A time only, in another location: it is the same instant that counts.
		{[]auth.Usage{{KeyID: "u", LastUsed: t0.Add(time.Minute).In(time.FixedZone("X", 3600))}}, 5.75, t0.Add(time.Minute)},
		// Usage of a key that does not exist (revoked meanwhile) is dropped.
		{[]auth.Usage{{KeyID: "gone", Points: 100, LastUsed: t0.Add(time.Hour)}, {KeyID: "u", Points: 0.25}}, 6, t0.Add(time.Minute)},
		{nil, 6, t0.Add(time.Minute)},
	}
	for i, st := range steps {
		if err := s.AddUsage(bg, st.us); err != nil {
			t.Fatalf("step %d: AddUsage: %v", i, err)
		}
		checkUsage(t, fmt.Sprintf("step %d: Get", i), mustGet(t, s, "u"), st.wantPoints, st.wantLast)
	}
	byHash, err := s.GetByHash(bg, k.Hash)
	if err != nil {
		t.Fatalf("GetByHash: %v", err)
	}
	checkUsage(t, "GetByHash", byHash, 6, t0.Add(time.Minute))
	checkUsage(t, "another key", mustGet(t, s, "other"), 0, time.Time{})
	if _, err := s.Get(bg, "gone"); !errors.Is(err, auth.ErrKeyNotFound) {
		t.Fatalf("AddUsage created a key: err = %v", err)
	}
	if n := auditLen(t, s); n != 2 {
		t.Fatalf("AddUsage wrote audit events: %d events, want 2", n)
	}
}

func testAudit(t *testing.T, s auth.Store) {
	a, b := newKey("a"), newKey("b")
	b.TeamID = "team-b"
	mustCreate(t, s, a) // seq 1: created a team-a
	mustCreate(t, s, b) // seq 2: created b team-b
	in := []auth.AuditEvent{
		{Time: t0.Add(3 * time.Second), Action: auth.AuditAuthFailed, KeyID: "a", TeamID: "team-a", Reason: "api_key_disabled", RemoteIP: "192.0.2.7"},
		{Time: t0.Add(4 * time.Second), Action: auth.AuditAuthFailed, Reason: "invalid_api_key", RemoteIP: "2001:db8::1", Count: 4321},
		{Time: t0.Add(5 * time.Second), Action: auth.AuditScopeDenied, KeyID: "b", TeamID: "team-b", Reason: "GET /x"},
		{Time: t0.Add(6 * time.Second), Action: auth.AuditAuthFailed, KeyID: "b", TeamID: "team-b", Reason: "rate_limit_exceeded", Seq: 999},
	}
	orig := slices.Clone(in)
	if err := s.AppendAudit(bg, in); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	if !slices.Equal(in, orig) {
		t.Fatalf("AppendAudit changed its argument: %+v", in)
	}
	if err := s.AppendAudit(bg, nil); err != nil {
		t.Fatalf("AppendAudit(nil): %v", err)
	}
	all := mustAudit(t, s, auth.AuditQuery{})
	if len(all) != 6 {
		t.Fatalf("Audit returned %d events, want 6: %+v", len(all), all)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq >= all[i-1].Seq {
			t.Fatalf("Audit is not newest first by Seq: %d then %d", all[i-1].Seq, all[i].Seq)
		}
	}
	if all[0].Seq == 999 {
		t.Fatal("AppendAudit kept the caller's Seq instead of assigning one")
	}
	for i, ev := range in {
		if got := all[3-i]; !sameEvent(got, &ev) {
			t.Fatalf("event %d = %+v, want %+v", i, got, ev)
		}
	}
	if all[4].Action != auth.AuditKeyCreated || all[4].KeyID != "b" || all[5].KeyID != "a" {
		t.Fatalf("the Create events are not the oldest: %+v", all[4:])
	}
	seqOf := func(evs []auth.AuditEvent) []uint64 {
		out := make([]uint64, 0, len(evs))
		for _, e := range evs {
			out = append(out, e.Seq)
		}
		return out
	}
	pick := func(idx ...int) []uint64 {
		var out []uint64
		for _, i := range idx {
			out = append(out, all[i].Seq)
		}
		return out
	}
	// all, newest first: 0 b failed, 1 b denied, 2 anon failed, 3 a failed, 4 b created, 5 a created.
	cases := []struct {
		q    auth.AuditQuery
		want []uint64
	}{
		{auth.AuditQuery{KeyID: "a"}, pick(3, 5)},
		{auth.AuditQuery{KeyID: "b"}, pick(0, 1, 4)},
		{auth.AuditQuery{TeamID: "team-b"}, pick(0, 1, 4)},
		{auth.AuditQuery{TeamID: "team-a"}, pick(3, 5)},
		{auth.AuditQuery{Action: auth.AuditAuthFailed}, pick(0, 2, 3)},
		{auth.AuditQuery{Action: auth.AuditKeyCreated}, pick(4, 5)},
		{auth.AuditQuery{Action: auth.AuditAuthFailed, TeamID: "team-b"}, pick(0)},
		{auth.AuditQuery{KeyID: "b", Action: auth.AuditScopeDenied, TeamID: "team-b"}, pick(1)},
		{auth.AuditQuery{KeyID: "a", TeamID: "team-b"}, nil},
		{auth.AuditQuery{Action: auth.AuditKeyRotated}, nil},
		{auth.AuditQuery{Limit: 2}, pick(0, 1)},
		{auth.AuditQuery{Limit: 1, Action: auth.AuditAuthFailed}, pick(0)},
		{auth.AuditQuery{Limit: 2, KeyID: "a"}, pick(3, 5)},
		{auth.AuditQuery{Limit: 1, KeyID: "a"}, pick(3)},
		{auth.AuditQuery{Limit: -5}, pick(0, 1, 2, 3, 4, 5)},
	}
	for _, c := range cases {
		got := mustAudit(t, s, c.q)
		if !slices.Equal(seqOf(got), c.want) {
			t.Fatalf("Audit(%+v) seqs = %v, want %v", c.q, seqOf(got), c.want)
		}
		for _, e := range got {
			if e.KeyID == "" && c.q.KeyID != "" {
				t.Fatalf("Audit(%+v) returned an event of no key", c.q)
			}
		}
	}
}

func testAuditDefaultLimit(t *testing.T, s auth.Store) {
	evs := make([]auth.AuditEvent, 105)
	for i := range evs {
		evs[i] = auth.AuditEvent{Time: t0.Add(time.Duration(i) * time.Second), Action: auth.AuditAuthFailed, Reason: fmt.Sprint(i)}
	}
	if err := s.AppendAudit(bg, evs); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	got := mustAudit(t, s, auth.AuditQuery{})
	if len(got) != 100 {
		t.Fatalf("Audit with no limit returned %d events, want the default 100", len(got))
	}
	if got[0].Reason != "104" || got[99].Reason != "5" {
		t.Fatalf("Audit with no limit returned %q..%q, want the newest: 104..5", got[0].Reason, got[99].Reason)
	}
	if got := mustAudit(t, s, auth.AuditQuery{Limit: 1000}); len(got) != 105 {
		t.Fatalf("Audit with limit 1000 returned %d events, want 105", len(got))
	}
}

func testNilEvent(t *testing.T, s auth.Store) {
	k := newKey("n")
	if err := s.Create(bg, k, nil); err != nil {
		t.Fatalf("Create with no event: %v", err)
	}
	k.Name = "renamed"
	if err := s.Update(bg, k, nil); err != nil {
		t.Fatalf("Update with no event: %v", err)
	}
	if got := mustGet(t, s, "n"); got.Name != "renamed" {
		t.Fatalf("Update with no event did not apply: name %q", got.Name)
	}
	if err := s.Delete(bg, "n", nil); err != nil {
		t.Fatalf("Delete with no event: %v", err)
	}
	if n := auditLen(t, s); n != 0 {
		t.Fatalf("changes with no event wrote %d audit events", n)
	}
}

func testCopies(t *testing.T, s auth.Store) {
	k := newKey("c")
	k.Retired = []auth.RetiredHash{{Hash: auth.HashKey("c-retired"), Until: t0.Add(time.Hour)}}
	want := newKey("c")
	want.Retired = slices.Clone(k.Retired)
	mustCreate(t, s, k)

	mutate := func(x *auth.Key) {
		x.Name = "mutated"
		x.Scopes[0] = auth.ScopeAdmin
		x.AllowedIPs[0] = netip.MustParsePrefix("0.0.0.0/0")
		x.Retired[0].Until = time.Time{}
		x.Meta["dm_policy"] = "mutated"
		x.Meta["new"] = "x"
		x.Limit.RPM = 0
		x.Disabled = true
	}
	// The caller's key after Create.
	mutate(k)
	checkKey(t, "after changing the key passed to Create", mustGet(t, s, "c"), want)

	// Keys returned by every read.
	got := mustGet(t, s, "c")
	mutate(got)
	checkKey(t, "after changing a key from Get", mustGet(t, s, "c"), want)
	byHash, err := s.GetByHash(bg, want.Hash)
	if err != nil {
		t.Fatalf("GetByHash: %v", err)
	}
	mutate(byHash)
	checkKey(t, "after changing a key from GetByHash", mustGet(t, s, "c"), want)
	ks := mustList(t, s, auth.Filter{})
	if len(ks) != 1 {
		t.Fatalf("List = %v", ids(ks))
	}
	mutate(ks[0])
	checkKey(t, "after changing a key from List", mustGet(t, s, "c"), want)

	// The caller's key after Update.
	up := newKey("c")
	up.Name = "updated"
	up.Retired = slices.Clone(want.Retired)
	want = up.Clone()
	if err := s.Update(bg, up, nil); err != nil {
		t.Fatalf("Update: %v", err)
	}
	mutate(up)
	checkKey(t, "after changing the key passed to Update", mustGet(t, s, "c"), want)

	// Events returned by Audit.
	mustCreate(t, s, newKey("d"))
	evs := mustAudit(t, s, auth.AuditQuery{})
	evs[0].Reason, evs[0].KeyID = "mutated", "mutated"
	if again := mustAudit(t, s, auth.AuditQuery{}); again[0].KeyID != "d" || again[0].Reason != "" {
		t.Fatalf("changing an event from Audit changed the store: %+v", again[0])
	}
}

func testConcurrent(t *testing.T, s auth.Store) {
	shared := newKey("shared")
	mustCreate(t, s, shared)
	const workers, perWorker = 8, 12
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker*4)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				id := fmt.Sprintf("w%d-%d", w, i)
				k := newKey(id)
				if err := s.Create(bg, k, event(auth.AuditKeyCreated, k, "")); err != nil {
					errs <- fmt.Errorf("Create(%s): %w", id, err)
				}
				// Every worker also races for one contested id.
				c := newKey("contested")
				c.Hash = auth.HashKey(fmt.Sprintf("contested-%d-%d", w, i))
				if err := s.Create(bg, c, event(auth.AuditKeyCreated, c, "")); err != nil && !errors.Is(err, auth.ErrKeyExists) {
					errs <- fmt.Errorf("Create(contested): %w", err)
				}
				last := t0.Add(time.Duration(w*perWorker+i) * time.Second)
				if err := s.AddUsage(bg, []auth.Usage{{KeyID: "shared", Points: 1, LastUsed: last}, {KeyID: id, Points: 0.5}}); err != nil {
					errs <- fmt.Errorf("AddUsage: %w", err)
				}
				if err := s.AppendAudit(bg, []auth.AuditEvent{{Time: last, Action: auth.AuditAuthFailed, Reason: id}}); err != nil {
					errs <- fmt.Errorf("AppendAudit: %w", err)
				}
				if _, err := s.GetByHash(bg, shared.Hash); err != nil {
					errs <- fmt.Errorf("GetByHash: %w", err)
				}
				if _, err := s.List(bg, auth.Filter{TeamID: "team-a"}); err != nil {
					errs <- fmt.Errorf("List: %w", err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	total := workers * perWorker
	checkUsage(t, "the shared key", mustGet(t, s, "shared"), float64(total), t0.Add(time.Duration(total-1)*time.Second))
	ks := mustList(t, s, auth.Filter{})
	if len(ks) != total+2 { // the workers' keys, shared and contested
		t.Fatalf("List has %d keys, want %d", len(ks), total+2)
	}
	for _, k := range ks {
		if k.ID != "shared" && k.ID != "contested" && k.UsagePoints != 0.5 {
			t.Fatalf("key %s has %v points, want 0.5", k.ID, k.UsagePoints)
		}
	}
	if n := len(mustAudit(t, s, auth.AuditQuery{Action: auth.AuditKeyCreated, Limit: 1000})); n != total+2 {
		t.Fatalf("%d created events, want %d", n, total+2)
	}
	evs := mustAudit(t, s, auth.AuditQuery{Limit: 1000})
	if len(evs) != 2*total+2 {
		t.Fatalf("%d audit events, want %d", len(evs), 2*total+2)
	}
	seen := map[uint64]bool{}
	for i, e := range evs {
		if seen[e.Seq] || (i > 0 && e.Seq >= evs[i-1].Seq) {
			t.Fatalf("audit seqs are not unique and decreasing at %d: %d after %d", i, e.Seq, evs[max(i-1, 0)].Seq)
		}
		seen[e.Seq] = true
	}
}

// appendTimed appends one auth.failed event per offset from t0, in order,
// each with its offset's index as Reason, and returns their seqs.
func appendTimed(t *testing.T, s auth.Store, offsets ...time.Duration) []uint64 {
	t.Helper()
	evs := make([]auth.AuditEvent, len(offsets))
	for i, d := range offsets {
		evs[i] = auth.AuditEvent{Time: t0.Add(d), Action: auth.AuditAuthFailed, Reason: fmt.Sprint(i), Count: i + 1}
	}
	if err := s.AppendAudit(bg, evs); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	got := mustAudit(t, s, auth.AuditQuery{Limit: 1000})
	seqs := make([]uint64, len(offsets))
	for i := range offsets {
		seqs[len(offsets)-1-i] = got[i].Seq
	}
	return seqs
}

func trim(t *testing.T, s auth.Store, before time.Time, keep, want int) {
	t.Helper()
	n, err := s.TrimAudit(bg, before, keep)
	if err != nil {
		t.Fatalf("TrimAudit(%v, %d): %v", before, keep, err)
	}
	if n != want {
		t.Fatalf("TrimAudit(%v, %d) removed %d events, want %d", before, keep, n, want)
	}
}

// reasons returns the Reasons of the trail, oldest first.
func reasons(t *testing.T, s auth.Store) []string {
	t.Helper()
	evs := mustAudit(t, s, auth.AuditQuery{Limit: 1000})
	out := make([]string, len(evs))
	for i, e := range evs {
		out[len(evs)-1-i] = e.Reason
	}
	return out
}

func testTrimAuditByAge(t *testing.T, s auth.Store) {
	trim(t, s, t0, 0, 0) // an empty trail
	minute := time.Minute
	appendTimed(t, s, 0, 1*minute, 2*minute, 3*minute, 4*minute, 5*minute)
	trim(t, s, time.Time{}, 0, 0) // no bound: nothing removed
	// Strictly older than before: the event at exactly 2m stays.
	trim(t, s, t0.Add(2*minute), 0, 2)
	if got := reasons(t, s); !slices.Equal(got, []string{"2", "3", "4", "5"}) {
		t.Fatalf("after trimming by age: %v", got)
	}
	trim(t, s, t0.Add(2*minute), 0, 0) // again: nothing more
	// Reading from the oldest, the trim stops at the first event that is
	// not old enough, even if a later one is (events are written a little
	// after their time, so seq order is only nearly time order).
	if err := s.AppendAudit(bg, []auth.AuditEvent{{Time: t0, Action: auth.AuditAuthFailed, Reason: "late"}}); err != nil {
		t.Fatal(err)
	}
	trim(t, s, t0.Add(4*minute), 0, 2)
	if got := reasons(t, s); !slices.Equal(got, []string{"4", "5", "late"}) {
		t.Fatalf("after trimming past a late event: %v", got)
	}
	// Everything is older than a time far ahead.
	trim(t, s, t0.Add(time.Hour), 0, 3)
	if got := reasons(t, s); len(got) != 0 {
		t.Fatalf("after trimming everything: %v", got)
	}
}

func testTrimAuditByCount(t *testing.T, s auth.Store) {
	k := newKey("k")
	mustCreate(t, s, k) // a key change is an audit event like any other
	seqs := appendTimed(t, s, 0, time.Second, 2*time.Second, 3*time.Second, 4*time.Second)
	trim(t, s, time.Time{}, 10, 0) // fewer than keep
	trim(t, s, time.Time{}, 6, 0)  // exactly keep
	trim(t, s, time.Time{}, 3, 3)
	got := mustAudit(t, s, auth.AuditQuery{Limit: 1000})
	if len(got) != 3 || got[0].Seq != seqs[4] || got[2].Seq != seqs[2] {
		t.Fatalf("after keeping 3: %+v", got)
	}
	for i, e := range got {
		if want := 5 - i; e.Count != want || e.Reason != fmt.Sprint(want-1) {
			t.Fatalf("kept event %d = %+v, want count %d", i, e, want)
		}
	}
	if _, err := s.Get(bg, "k"); err != nil {
		t.Fatalf("trimming the trail touched the key: %v", err)
	}
	trim(t, s, time.Time{}, 1, 2)
	// Seqs are never reused, so the trail keeps its order across trims.
	next := appendTimed(t, s, 5*time.Second)
	if next[0] <= seqs[4] {
		t.Fatalf("an event appended after a trim got seq %d, not above %d", next[0], seqs[4])
	}
	if got := reasons(t, s); !slices.Equal(got, []string{"4", "0"}) {
		t.Fatalf("trail after trim and append: %v", got)
	}
}

func testTrimAuditBoth(t *testing.T, s auth.Store) {
	minute := time.Minute
	appendTimed(t, s, 0, 1*minute, 2*minute, 3*minute, 4*minute, 5*minute, 6*minute, 7*minute)
	// The age removes 2, then the count leaves the newest 5.
	trim(t, s, t0.Add(2*minute), 5, 3)
	if got := reasons(t, s); !slices.Equal(got, []string{"3", "4", "5", "6", "7"}) {
		t.Fatalf("after trimming by age and count: %v", got)
	}
	// The age removes more than the count would.
	trim(t, s, t0.Add(6*minute), 4, 3)
	if got := reasons(t, s); !slices.Equal(got, []string{"6", "7"}) {
		t.Fatalf("after trimming by age past the count: %v", got)
	}
}

// A team's events come back newest first and only its own, whatever their
// neighbours: teams whose ids are prefixes of one another, events of no
// team between them, and trims.
func testAuditByTeam(t *testing.T, s auth.Store) {
	teams := []string{"t", "t1", "t10", "", "u", "t1"}
	var evs []auth.AuditEvent
	for i := range 600 {
		team := teams[i%len(teams)]
		evs = append(evs, auth.AuditEvent{Time: t0.Add(time.Duration(i) * time.Second), Action: auth.AuditAuthFailed,
			TeamID: team, KeyID: fmt.Sprintf("k%d", i%4), Reason: fmt.Sprint(i)})
	}
	if err := s.AppendAudit(bg, evs); err != nil {
		t.Fatal(err)
	}
	check := func(when string, q auth.AuditQuery, from int) {
		t.Helper()
		var want []string
		for i := len(evs) - 1; i >= from && len(want) < max(q.Limit, 1); i-- {
			e := evs[i]
			if e.TeamID == q.TeamID && (q.KeyID == "" || e.KeyID == q.KeyID) {
				want = append(want, e.Reason)
			}
		}
		got := mustAudit(t, s, q)
		var reasons []string
		for _, e := range got {
			reasons = append(reasons, e.Reason)
		}
		if !slices.Equal(reasons, want) {
			t.Fatalf("%s: Audit(%+v) = %v\nwant %v", when, q, reasons, want)
		}
	}
	for _, team := range []string{"t", "t1", "t10", "u"} {
		for _, limit := range []int{1, 7, 100, 1000} {
			check("before trimming", auth.AuditQuery{TeamID: team, Limit: limit}, 0)
			check("before trimming", auth.AuditQuery{TeamID: team, KeyID: "k2", Limit: limit}, 0)
		}
	}
	if got := mustAudit(t, s, auth.AuditQuery{TeamID: "nope"}); len(got) != 0 {
		t.Fatalf("an unknown team has events: %+v", got)
	}
	if got := mustAudit(t, s, auth.AuditQuery{TeamID: "t10x"}); len(got) != 0 {
		t.Fatalf("a team whose id extends another's has events: %+v", got)
	}
	trim(t, s, time.Time{}, 250, 350)
	for _, team := range []string{"t", "t1", "t10", "u"} {
		check("after trimming", auth.AuditQuery{TeamID: team, Limit: 1000}, 350)
	}
}
