package auth_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
)

// storeState is a printable snapshot of everything a store holds that the
// Manager may change: every key with its usage, and the audit trail minus
// the auth failures the Authenticator writes in the background.
func storeState(t *testing.T, s auth.Store) string {
	t.Helper()
	ks, err := s.List(ctx, auth.Filter{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	evs, err := s.Audit(ctx, auth.AuditQuery{Limit: 10000})
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	type row struct {
		Key      *auth.Key
		Points   float64
		LastUsed time.Time
	}
	var rows []row
	for _, k := range ks {
		rows = append(rows, row{k, k.UsagePoints, k.LastUsedTime})
	}
	evs = slices.DeleteFunc(evs, func(e auth.AuditEvent) bool {
		return e.Action == auth.AuditAuthFailed || e.Action == auth.AuditScopeDenied
	})
	b, err := json.Marshal(struct {
		Keys  []row
		Audit []auth.AuditEvent
	}{rows, evs})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// unchanged fails the test if the store no longer matches before.
func unchanged(t *testing.T, s auth.Store, before, what string) {
	t.Helper()
	if after := storeState(t, s); after != before {
		t.Fatalf("%s changed the store:\nbefore %s\nafter  %s", what, before, after)
	}
}

// wantInvalidField asserts a 400 invalid_request error naming field.
func wantInvalidField(t *testing.T, err error, field string) {
	t.Helper()
	if !errors.Is(err, apierror.ErrInvalidRequest) {
		t.Fatalf("err = %v, want invalid_request naming %q", err, field)
	}
	if !strings.Contains(err.Error(), `"`+field+`"`) {
		t.Fatalf("error %q does not name the field %q", err, field)
	}
	var ae *apierror.Error
	if errors.As(err, &ae) && ae.Status != 400 {
		t.Fatalf("status = %d, want 400", ae.Status)
	}
}

// lastEvent returns the newest audit event of a change to key keyID,
// skipping the auth failures the Authenticator writes in the background.
func lastEvent(t *testing.T, s auth.Store, keyID string) auth.AuditEvent {
	t.Helper()
	evs, err := s.Audit(ctx, auth.AuditQuery{KeyID: keyID, Limit: 1000})
	if err != nil {
		t.Fatalf("Audit(key %s): %v", keyID, err)
	}
	for _, ev := range evs {
		if ev.Action != auth.AuditAuthFailed && ev.Action != auth.AuditScopeDenied {
			return ev
		}
	}
	t.Fatalf("no audit event for key %s: %+v", keyID, evs)
	return auth.AuditEvent{}
}

func checkEvent(t *testing.T, ev auth.AuditEvent, action auth.AuditAction, k *auth.Key, actor, reason string, when time.Time) {
	t.Helper()
	if ev.Action != action || ev.KeyID != k.ID || ev.TeamID != k.TeamID || ev.Hint != k.Hint ||
		ev.ActorKeyID != actor || ev.Reason != reason || !ev.Time.Equal(when) {
		t.Fatalf("audit event = %+v, want %s of %s (team %s, hint %s) by %q, reason %q at %v",
			ev, action, k.ID, k.TeamID, k.Hint, actor, reason, when)
	}
}

func authOK(t *testing.T, e *env, secret, keyID string) *auth.Principal {
	t.Helper()
	p, err := e.authn.Authenticate(ctx, secret, loopback)
	if err != nil {
		t.Fatalf("Authenticate(key %s): %v", keyID, err)
	}
	if p.KeyID != keyID {
		t.Fatalf("Authenticate resolved to key %s, want %s", p.KeyID, keyID)
	}
	return p
}

func TestManagerCreate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, auth.Options{})
		now := time.Now().UTC()
		limit := auth.Limit{MaxUsagePoints: 50, RPM: 30, ExpiredTime: now.Add(24 * time.Hour)}
		ips := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		k, secret, err := e.mgr.Create(ctx, auth.KeySpec{
			Name: "  bot  ", AppID: "app-1", TeamID: "team-a", Limit: limit, AllowedIPs: ips, Actor: "admin-1",
			Scopes: auth.Scopes{auth.ScopeDatasetRead, auth.ScopeChat, auth.ScopeChat},
		})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(secret, auth.DefaultPrefix) || len(secret) != len(auth.DefaultPrefix)+43+6 {
			t.Fatalf("secret %q is not a generated key", secret)
		}
		want := fmt.Sprintf("%s%s...%s", auth.DefaultPrefix, secret[3:7], secret[len(secret)-4:])
		if k.Name != "bot" || k.TeamID != "team-a" || k.AppID != "app-1" || k.Source != auth.SourceGenerated ||
			!slices.Equal(k.Scopes, auth.Scopes{auth.ScopeChat, auth.ScopeDatasetRead}) || k.Limit != limit ||
			!slices.Equal(k.AllowedIPs, ips) || k.Disabled || k.Hash != auth.HashKey(secret) || k.Hint != want ||
			!k.CreateTime.Equal(now) || !k.UpdateTime.Equal(now) || len(k.Retired) != 0 || k.ID == "" {
			t.Fatalf("created key = %+v", k)
		}
		stored, err := e.store.Get(ctx, k.ID)
		if err != nil || stored.Hash != k.Hash || stored.Name != "bot" {
			t.Fatalf("stored key = %+v, %v", stored, err)
		}
		checkEvent(t, lastEvent(t, e.store, k.ID), auth.AuditKeyCreated, k, "admin-1", "", now)
		p := authOK(t, e, secret, k.ID)
		if p.TeamID != "team-a" || p.AppID != "app-1" || !p.Has(auth.ScopeChat) || p.Has(auth.ScopeAdmin) {
			t.Fatalf("principal = %+v", p)
		}

		// Defaults: the default team; chat for an app key, the data scopes for a global key.
		g, _, err := e.mgr.Create(ctx, auth.KeySpec{Name: "global"})
		if err != nil {
			t.Fatal(err)
		}
		if g.TeamID != auth.DefaultTeam || !slices.Equal(g.Scopes, auth.Scopes{auth.ScopeBillingRead, auth.ScopeDatasetRead, auth.ScopeDatasetWrite}) {
			t.Fatalf("global key defaults: team %q scopes %v", g.TeamID, g.Scopes)
		}
		a, _, err := e.mgr.Create(ctx, auth.KeySpec{Name: "app", AppID: "app-2"})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(a.Scopes, auth.Scopes{auth.ScopeChat}) {
			t.Fatalf("app key default scopes = %v", a.Scopes)
		}

		// Two keys never share a secret or an id.
		if a.ID == g.ID || a.Hash == g.Hash {
			t.Fatal("two created keys share an id or a hash")
		}

		// A custom prefix is used for new keys.
		e2 := newEnv(t, nil, auth.Options{Prefix: "tk_"})
		k2, s2, err := e2.mgr.Create(ctx, auth.KeySpec{Name: "x"})
		if err != nil || !strings.HasPrefix(s2, "tk_") || !strings.HasPrefix(k2.Hint, "tk_") {
			t.Fatalf("custom prefix: %q hint %q, %v", s2, k2.Hint, err)
		}
	})
}

func TestManagerCreateRejects(t *testing.T) {
	e := newEnv(t, nil, auth.Options{})
	e.create(t, auth.KeySpec{Name: "existing"})
	before := storeState(t, e.store)
	cases := []struct {
		spec  auth.KeySpec
		field string
	}{
		{auth.KeySpec{}, "name"},
		{auth.KeySpec{Name: " \t "}, "name"},
		{auth.KeySpec{Name: strings.Repeat("n", 201)}, "name"},
		{auth.KeySpec{Name: "x", Scopes: auth.Scopes{"chat", "superuser"}}, "scopes"},
		{auth.KeySpec{Name: "x", Limit: auth.Limit{RPM: -1}}, "limit.rpm"},
	}
	for _, c := range cases {
		k, secret, err := e.mgr.Create(ctx, c.spec)
		wantInvalidField(t, err, c.field)
		if k != nil || secret != "" {
			t.Fatalf("a rejected Create returned %v, %q", k, secret)
		}
		unchanged(t, e.store, before, fmt.Sprintf("a rejected Create(%+v)", c.spec))
	}
	// 200 characters is still fine.
	e.create(t, auth.KeySpec{Name: strings.Repeat("n", 200)})
}

func TestManagerImport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, auth.Options{})
		now := time.Now().UTC()
		k, err := e.mgr.Import(ctx, auth.KeySpec{Name: "legacy", AppID: "app-1", Actor: "admin-1"}, "abcde")
		if err != nil {
			t.Fatalf("Import of a 5-character key: %v", err)
		}
		if k.Source != auth.SourceImported || k.Hash != auth.HashKey("abcde") || k.Hint == "abcde" || strings.Contains(k.Hint, "abcde") {
			t.Fatalf("imported key = %+v", k)
		}
		checkEvent(t, lastEvent(t, e.store, k.ID), auth.AuditKeyImported, k, "admin-1", "", now)
		authOK(t, e, "abcde", k.ID)

		// A well-formed generated key from another install may be imported.
		other := newEnv(t, nil, auth.Options{})
		_, foreign := other.create(t, auth.KeySpec{Name: "elsewhere"})
		fk, err := e.mgr.Import(ctx, auth.KeySpec{Name: "moved"}, foreign)
		if err != nil {
			t.Fatalf("Import of a valid generated key: %v", err)
		}
		authOK(t, e, foreign, fk.ID)
		_, generated := e.create(t, auth.KeySpec{Name: "generated"})

		before := storeState(t, e.store)
		bad := []struct {
			name, secret, field, says string
		}{
			{"4 characters", "abcd", "key", "at least 5"},
			{"empty", "", "key", "at least 5"},
			{"257 characters", strings.Repeat("k", 257), "key", "at most 256"},
			{"a space", "abc defg", "key", "printable"},
			{"non-ASCII", "schlüssel-123", "key", "printable"},
			{"the reserved prefix", "cg-my-own-key-123", "key", "reserved"},
			{"the reserved prefix and a bad checksum", generated[:len(generated)-1] + "0", "key", "reserved"},
		}
		if generated[len(generated)-1] == '0' {
			bad[len(bad)-1].secret = generated[:len(generated)-1] + "1"
		}
		for _, c := range bad {
			_, err := e.mgr.Import(ctx, auth.KeySpec{Name: "bad"}, c.secret)
			wantInvalidField(t, err, c.field)
			if !strings.Contains(err.Error(), c.says) {
				t.Fatalf("import with %s: message %q does not say %q", c.name, err, c.says)
			}
			unchanged(t, e.store, before, "an Import with "+c.name)
		}
		_, err = e.mgr.Import(ctx, auth.KeySpec{Name: ""}, "a-fine-secret")
		wantInvalidField(t, err, "name")
		unchanged(t, e.store, before, "an Import without a name")

		// The same key twice, or a key this install generated, in this team or
		// another: refused as a bad key is, with nothing telling that the key
		// exists, and the same answer whichever team holds it.
		var refusals []string
		for _, c := range []struct{ team, secret string }{
			{"", "abcde"}, {"", foreign}, {"", generated}, {"other-team", "abcde"}, {"other-team", generated},
		} {
			_, err := e.mgr.Import(ctx, auth.KeySpec{Name: "again", TeamID: c.team}, c.secret)
			wantInvalidField(t, err, "key")
			if errors.Is(err, apierror.ErrConflict) || strings.Contains(err.Error(), c.secret) {
				t.Fatalf("duplicate Import in team %q: %v", c.team, err)
			}
			for _, tell := range []string{"already", "registered", "in use", "exist", "taken"} {
				if strings.Contains(err.Error(), tell) {
					t.Fatalf("duplicate Import in team %q: %q tells the key exists", c.team, err)
				}
			}
			refusals = append(refusals, err.Error())
			unchanged(t, e.store, before, "a duplicate Import")
		}
		for _, r := range refusals {
			if r != refusals[0] {
				t.Fatalf("duplicate imports answered differently: %q", refusals)
			}
		}
		authOK(t, e, "abcde", k.ID)
	})
}

func TestManagerGetListTeams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, auth.Options{})
		a1, secret := e.create(t, auth.KeySpec{Name: "a1", TeamID: "team-a", AppID: "app-1"})
		time.Sleep(time.Second)
		b1, _ := e.create(t, auth.KeySpec{Name: "b1", TeamID: "team-b", AppID: "app-1"})
		time.Sleep(time.Second)
		a2, _ := e.create(t, auth.KeySpec{Name: "a2", TeamID: "team-a"})

		if k, err := e.mgr.Get(ctx, "team-a", a1.ID); err != nil || k.ID != a1.ID || k.Name != "a1" {
			t.Fatalf("Get in its own team = %v, %v", k, err)
		}
		if k, err := e.mgr.Get(ctx, "", b1.ID); err != nil || k.ID != b1.ID {
			t.Fatalf("Get in any team = %v, %v", k, err)
		}
		// Another team's key answers exactly as a missing one.
		_, errOther := e.mgr.Get(ctx, "team-b", a1.ID)
		_, errMissing := e.mgr.Get(ctx, "team-b", "no-such-key")
		for _, err := range []error{errOther, errMissing} {
			if !errors.Is(err, apierror.ErrNotFound) {
				t.Fatalf("Get across teams / of a missing key: err = %v, want not_found", err)
			}
		}
		if errOther.Error() != errMissing.Error() {
			t.Fatalf("another team's key (%q) is told apart from a missing one (%q)", errOther, errMissing)
		}

		// Changes across teams are refused the same way and change nothing.
		before := storeState(t, e.store)
		name := "stolen"
		_, err := e.mgr.Update(ctx, "team-b", a1.ID, auth.KeyUpdate{Name: &name})
		wantNotFound(t, err)
		_, _, err = e.mgr.Rotate(ctx, "team-b", a1.ID, time.Hour, "")
		wantNotFound(t, err)
		wantNotFound(t, e.mgr.Revoke(ctx, "team-b", a1.ID, ""))
		unchanged(t, e.store, before, "changes from another team")

		list := func(f auth.Filter) []string {
			t.Helper()
			ks, err := e.mgr.List(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, k := range ks {
				ids = append(ids, k.ID)
			}
			return ids
		}
		if got := list(auth.Filter{TeamID: "team-a"}); !slices.Equal(got, []string{a1.ID, a2.ID}) {
			t.Fatalf("List(team-a) = %v", got)
		}
		if got := list(auth.Filter{TeamID: "team-b"}); !slices.Equal(got, []string{b1.ID}) {
			t.Fatalf("List(team-b) = %v", got)
		}
		if got := list(auth.Filter{AppID: "app-1"}); !slices.Equal(got, []string{a1.ID, b1.ID}) {
			t.Fatalf("List(app-1) = %v", got)
		}
		if got := list(auth.Filter{}); !slices.Equal(got, []string{a1.ID, b1.ID, a2.ID}) {
			t.Fatalf("List() = %v", got)
		}
		if got := list(auth.Filter{TeamID: "team-c"}); len(got) != 0 {
			t.Fatalf("List(team-c) = %v", got)
		}

		// Get and List show usage not flushed yet.
		authOK(t, e, secret, a1.ID)
		if err := e.authn.Charge(ctx, a1.ID, 2.5); err != nil {
			t.Fatal(err)
		}
		k, err := e.mgr.Get(ctx, "team-a", a1.ID)
		if err != nil || k.UsagePoints != 2.5 || !k.LastUsedTime.Equal(time.Now().UTC()) {
			t.Fatalf("Get usage = %v, %v, %v; want 2.5 at %v", k.UsagePoints, k.LastUsedTime, err, time.Now().UTC())
		}
		ks, _ := e.mgr.List(ctx, auth.Filter{TeamID: "team-a"})
		if ks[0].UsagePoints != 2.5 || ks[1].UsagePoints != 0 {
			t.Fatalf("List usage = %v, %v", ks[0].UsagePoints, ks[1].UsagePoints)
		}
	})
}

func wantNotFound(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, apierror.ErrNotFound) {
		t.Fatalf("err = %v, want not_found", err)
	}
}

func TestManagerUpdate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, auth.Options{})
		k, secret := e.create(t, auth.KeySpec{Name: "orig", AppID: "app-1"})
		authOK(t, e, secret, k.ID)

		update := func(u auth.KeyUpdate, reason string) *auth.Key {
			t.Helper()
			time.Sleep(time.Minute)
			u.Actor = "admin-1"
			got, err := e.mgr.Update(ctx, "", k.ID, u)
			if err != nil {
				t.Fatalf("Update(%s): %v", reason, err)
			}
			if !got.UpdateTime.Equal(time.Now().UTC()) || !got.CreateTime.Equal(k.CreateTime) || got.Hash != k.Hash {
				t.Fatalf("Update(%s): times/hash = %v %v %s", reason, got.UpdateTime, got.CreateTime, got.Hash)
			}
			checkEvent(t, lastEvent(t, e.store, k.ID), auth.AuditKeyUpdated, got, "admin-1", reason, time.Now().UTC())
			stored, err := e.store.Get(ctx, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			if stored.Name != got.Name || !slices.Equal(stored.Scopes, got.Scopes) || stored.Limit != got.Limit ||
				!slices.Equal(stored.AllowedIPs, got.AllowedIPs) || stored.Disabled != got.Disabled {
				t.Fatalf("Update(%s) returned %+v but stored %+v", reason, got, stored)
			}
			return got
		}

		name := "  renamed "
		if got := update(auth.KeyUpdate{Name: &name}, "name"); got.Name != "renamed" {
			t.Fatalf("name = %q", got.Name)
		}
		if p := authOK(t, e, secret, k.ID); p.KeyName != "renamed" {
			t.Fatalf("principal name after rename = %q", p.KeyName)
		}

		scopes := auth.Scopes{auth.ScopeDatasetWrite, auth.ScopeBillingRead, auth.ScopeBillingRead}
		if got := update(auth.KeyUpdate{Scopes: &scopes}, "scopes"); !slices.Equal(got.Scopes, auth.Scopes{auth.ScopeBillingRead, auth.ScopeDatasetWrite}) {
			t.Fatalf("scopes = %v", got.Scopes)
		}
		if p := authOK(t, e, secret, k.ID); p.Has(auth.ScopeChat) || !p.Has(auth.ScopeDatasetWrite) {
			t.Fatalf("principal scopes after update = %v", p.Scopes)
		}

		expired := auth.Limit{ExpiredTime: time.Now().UTC(), MaxUsagePoints: 7, RPM: 3}
		if got := update(auth.KeyUpdate{Limit: &expired}, "limit"); got.Limit != expired {
			t.Fatalf("limit = %+v", got.Limit)
		}
		_, err := e.authn.Authenticate(ctx, secret, loopback)
		wantErr(t, err, auth.ErrKeyExpired)
		open := auth.Limit{}
		update(auth.KeyUpdate{Limit: &open}, "limit")
		authOK(t, e, secret, k.ID)

		elsewhere := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
		if got := update(auth.KeyUpdate{AllowedIPs: &elsewhere}, "allowedIPs"); !slices.Equal(got.AllowedIPs, elsewhere) {
			t.Fatalf("allowedIPs = %v", got.AllowedIPs)
		}
		_, err = e.authn.Authenticate(ctx, secret, loopback)
		wantErr(t, err, auth.ErrIPNotAllowed)
		none := []netip.Prefix{}
		update(auth.KeyUpdate{AllowedIPs: &none}, "allowedIPs")
		authOK(t, e, secret, k.ID)

		yes, no := true, false
		if got := update(auth.KeyUpdate{Disabled: &yes}, "disabled"); !got.Disabled {
			t.Fatal("not disabled")
		}
		_, err = e.authn.Authenticate(ctx, secret, loopback)
		wantErr(t, err, auth.ErrKeyDisabled)
		update(auth.KeyUpdate{Disabled: &no}, "disabled")
		authOK(t, e, secret, k.ID)

		name2 := "all"
		got := update(auth.KeyUpdate{Name: &name2, Scopes: &scopes, Limit: &open, AllowedIPs: &none, Disabled: &no},
			"name,scopes,limit,allowedIPs,disabled")
		if got.Name != "all" {
			t.Fatalf("name = %q", got.Name)
		}

		// Usage survives updates.
		if err := e.authn.Charge(ctx, k.ID, 4); err != nil {
			t.Fatal(err)
		}
		if err := e.authn.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		got = update(auth.KeyUpdate{Name: &name}, "name")
		if got.UsagePoints != 4 {
			t.Fatalf("usage after Update = %v, want 4", got.UsagePoints)
		}
		if stored, _ := e.store.Get(ctx, k.ID); stored.UsagePoints != 4 {
			t.Fatalf("stored usage after Update = %v, want 4", stored.UsagePoints)
		}
	})
}

func TestManagerUpdateRejects(t *testing.T) {
	e := newEnv(t, nil, auth.Options{})
	k, _ := e.create(t, auth.KeySpec{Name: "k"})
	if _, err := e.mgr.EnsureRootKey(ctx, "the-root-secret"); err != nil {
		t.Fatal(err)
	}
	if err := e.mgr.SyncConfig(ctx, []auth.ConfigKey{{Account: "bot", Enabled: true, Secret: "config-secret"}}); err != nil {
		t.Fatal(err)
	}
	before := storeState(t, e.store)

	empty, long := " ", strings.Repeat("x", 201)
	noScopes, badScopes := auth.Scopes{}, auth.Scopes{"root"}
	negRPM := auth.Limit{RPM: -5}
	cases := []struct {
		u     auth.KeyUpdate
		field string
	}{
		{auth.KeyUpdate{Name: &empty}, "name"},
		{auth.KeyUpdate{Name: &long}, "name"},
		{auth.KeyUpdate{Scopes: &noScopes}, "scopes"},
		{auth.KeyUpdate{Scopes: &badScopes}, "scopes"},
		{auth.KeyUpdate{Limit: &negRPM}, "limit.rpm"},
		// A bad field fails the whole update, good fields included.
		{auth.KeyUpdate{Name: new("fine"), Scopes: &badScopes}, "scopes"},
	}
	for _, c := range cases {
		_, err := e.mgr.Update(ctx, "", k.ID, c.u)
		wantInvalidField(t, err, c.field)
		unchanged(t, e.store, before, "a rejected Update")
	}
	_, err := e.mgr.Update(ctx, "", k.ID, auth.KeyUpdate{Actor: "admin"})
	if !errors.Is(err, apierror.ErrInvalidRequest) || !strings.Contains(err.Error(), "nothing to update") {
		t.Fatalf("empty Update: err = %v", err)
	}
	_, err = e.mgr.Update(ctx, "", "missing", auth.KeyUpdate{Name: new("x")})
	wantNotFound(t, err)
	unchanged(t, e.store, before, "a rejected Update")

	// Config and root keys cannot be changed through the Manager at all.
	yes := true
	for _, id := range []string{auth.ConfigKeyID("bot"), auth.RootKeyID} {
		_, err := e.mgr.Update(ctx, "", id, auth.KeyUpdate{Disabled: &yes})
		if !errors.Is(err, auth.ErrConfigManaged) {
			t.Fatalf("Update(%s): err = %v, want key_managed_by_config", id, err)
		}
		_, _, err = e.mgr.Rotate(ctx, "", id, 0, "")
		if !errors.Is(err, auth.ErrConfigManaged) {
			t.Fatalf("Rotate(%s): err = %v, want key_managed_by_config", id, err)
		}
		if err := e.mgr.Revoke(ctx, "", id, ""); !errors.Is(err, auth.ErrConfigManaged) {
			t.Fatalf("Revoke(%s): err = %v, want key_managed_by_config", id, err)
		}
		unchanged(t, e.store, before, "a change of "+id)
	}
}

func TestManagerRotate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, auth.Options{})
		k, old := e.create(t, auth.KeySpec{Name: "r", AppID: "app-1"})
		authOK(t, e, old, k.ID)

		time.Sleep(time.Minute)
		start := time.Now().UTC()
		r, fresh, err := e.mgr.Rotate(ctx, "", k.ID, time.Hour, "admin-1")
		if err != nil {
			t.Fatal(err)
		}
		if fresh == old || r.Hash != auth.HashKey(fresh) || r.Hint == k.Hint || r.ID != k.ID || !r.UpdateTime.Equal(start) {
			t.Fatalf("rotated key = %+v", r)
		}
		if len(r.Retired) != 1 || r.Retired[0].Hash != auth.HashKey(old) || !r.Retired[0].Until.Equal(start.Add(time.Hour)) {
			t.Fatalf("retired = %+v", r.Retired)
		}
		checkEvent(t, lastEvent(t, e.store, k.ID), auth.AuditKeyRotated, r, "admin-1", "grace=1h0m0s", start)

		authOK(t, e, fresh, k.ID)
		authOK(t, e, old, k.ID)
		time.Sleep(time.Hour - time.Nanosecond)
		authOK(t, e, old, k.ID)
		time.Sleep(time.Nanosecond)
		_, err = e.authn.Authenticate(ctx, old, loopback)
		wantErr(t, err, auth.ErrInvalidKey)
		authOK(t, e, fresh, k.ID)

		// A second rotation drops retired hashes whose grace is over and
		// keeps those still running.
		r2, fresher, err := e.mgr.Rotate(ctx, "", k.ID, 2*time.Hour, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(r2.Retired) != 1 || r2.Retired[0].Hash != auth.HashKey(fresh) {
			t.Fatalf("retired after a second rotation = %+v", r2.Retired)
		}
		if _, err := e.store.GetByHash(ctx, auth.HashKey(old)); !errors.Is(err, auth.ErrKeyNotFound) {
			t.Fatalf("a hash past its grace still resolves: %v", err)
		}
		time.Sleep(time.Minute)
		r3, newest, err := e.mgr.Rotate(ctx, "", k.ID, time.Minute, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(r3.Retired) != 2 {
			t.Fatalf("retired after a third rotation = %+v, want the two in grace", r3.Retired)
		}
		for _, s := range []string{fresh, fresher, newest} {
			authOK(t, e, s, k.ID)
		}

		// Without grace the old key fails at once.
		r4, final, err := e.mgr.Rotate(ctx, "", k.ID, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		if reason := lastEvent(t, e.store, k.ID).Reason; reason != "grace=0s" {
			t.Fatalf("reason = %q", reason)
		}
		if len(r4.Retired) != 2 {
			t.Fatalf("a rotation without grace retired the old hash: %+v", r4.Retired)
		}
		_, err = e.authn.Authenticate(ctx, newest, loopback)
		wantErr(t, err, auth.ErrInvalidKey)
		authOK(t, e, final, k.ID)

		// An imported key becomes a generated one when rotated.
		imp, err := e.mgr.Import(ctx, auth.KeySpec{Name: "imp"}, "imported-secret")
		if err != nil {
			t.Fatal(err)
		}
		ri, s, err := e.mgr.Rotate(ctx, "", imp.ID, auth.MaxGrace, "")
		if err != nil {
			t.Fatalf("Rotate with the longest grace: %v", err)
		}
		if ri.Source != auth.SourceGenerated || !strings.HasPrefix(s, auth.DefaultPrefix) {
			t.Fatalf("rotated import: source %q secret %q", ri.Source, s)
		}
		authOK(t, e, "imported-secret", imp.ID)

		// Bad grace periods change nothing.
		before := storeState(t, e.store)
		for _, g := range []time.Duration{auth.MaxGrace + time.Nanosecond, 31 * 24 * time.Hour, -time.Second} {
			_, secret, err := e.mgr.Rotate(ctx, "", k.ID, g, "")
			wantInvalidField(t, err, "graceSeconds")
			if secret != "" {
				t.Fatalf("a rejected Rotate returned a secret")
			}
			unchanged(t, e.store, before, fmt.Sprintf("Rotate with grace %v", g))
		}
		_, _, err = e.mgr.Rotate(ctx, "", "missing", time.Hour, "")
		wantNotFound(t, err)
		unchanged(t, e.store, before, "Rotate of a missing key")
		authOK(t, e, final, k.ID)
	})
}

func TestManagerRevoke(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, auth.Options{CacheTTL: time.Hour})
		k, secret := e.create(t, auth.KeySpec{Name: "doomed", TeamID: "team-a", AppID: "app-1"})
		keep, keepSecret := e.create(t, auth.KeySpec{Name: "keep", TeamID: "team-a"})
		authOK(t, e, secret, k.ID) // now cached for an hour
		if err := e.authn.Charge(ctx, k.ID, 1); err != nil {
			t.Fatal(err)
		}

		time.Sleep(time.Second)
		if err := e.mgr.Revoke(ctx, "team-a", k.ID, "admin-1"); err != nil {
			t.Fatal(err)
		}
		_, err := e.authn.Authenticate(ctx, secret, loopback)
		wantErr(t, err, auth.ErrInvalidKey)
		_, err = e.mgr.Get(ctx, "", k.ID)
		wantNotFound(t, err)
		checkEvent(t, lastEvent(t, e.store, k.ID), auth.AuditKeyRevoked, k, "admin-1", "", time.Now().UTC())
		if err := e.authn.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Get(ctx, k.ID); !errors.Is(err, auth.ErrKeyNotFound) {
			t.Fatalf("a flush brought the revoked key back: %v", err)
		}
		authOK(t, e, keepSecret, keep.ID)

		before := storeState(t, e.store)
		wantNotFound(t, e.mgr.Revoke(ctx, "team-a", k.ID, "admin-1"))
		wantNotFound(t, e.mgr.Revoke(ctx, "team-b", keep.ID, "admin-1"))
		unchanged(t, e.store, before, "a rejected Revoke")
	})
}

func TestManagerAuditTrail(t *testing.T) {
	e := newEnv(t, nil, auth.Options{})
	k, secret := e.create(t, auth.KeySpec{Name: "k", TeamID: "team-a", Actor: "a1"})
	name := "k2"
	if _, err := e.mgr.Update(ctx, "team-a", k.ID, auth.KeyUpdate{Name: &name, Actor: "a2"}); err != nil {
		t.Fatal(err)
	}
	_, rotated, err := e.mgr.Rotate(ctx, "team-a", k.ID, time.Minute, "a3")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.mgr.Revoke(ctx, "team-a", k.ID, "a4"); err != nil {
		t.Fatal(err)
	}
	imp, err := e.mgr.Import(ctx, auth.KeySpec{Name: "i", TeamID: "team-b", Actor: "a5"}, "imported-one")
	if err != nil {
		t.Fatal(err)
	}

	evs, err := e.mgr.Audit(ctx, auth.AuditQuery{TeamID: "team-a"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		got = append(got, string(ev.Action)+"/"+ev.ActorKeyID)
		if ev.KeyID != k.ID {
			t.Fatalf("team-a trail holds %+v", ev)
		}
		raw, _ := json.Marshal(ev)
		for _, s := range []string{secret, rotated, auth.HashKey(secret).String(), auth.HashKey(rotated).String()} {
			if strings.Contains(string(raw), s) {
				t.Fatalf("audit event %s holds a key or its hash", raw)
			}
		}
	}
	want := []string{"key.revoked/a4", "key.rotated/a3", "key.updated/a2", "key.created/a1"}
	if !slices.Equal(got, want) {
		t.Fatalf("team-a trail = %v, want %v", got, want)
	}
	evs, err = e.mgr.Audit(ctx, auth.AuditQuery{Action: auth.AuditKeyImported})
	if err != nil || len(evs) != 1 || evs[0].KeyID != imp.ID || evs[0].TeamID != "team-b" || evs[0].ActorKeyID != "a5" {
		t.Fatalf("import trail = %+v, %v", evs, err)
	}
}

func TestSyncConfig(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, auth.Options{})
		api, apiSecret := e.create(t, auth.KeySpec{Name: "made through the API"})
		accounts := []auth.ConfigKey{
			{Account: "bot", Enabled: true, Secret: "bot-secret-1", TeamID: "team-a", AppID: "app-1",
				Scopes: auth.Scopes{auth.ScopeChat}, Limit: auth.Limit{RPM: 10},
				Meta: map[string]string{"dm_policy": "open"}},
			{Account: "ops", Name: "Operations", Enabled: false, Secret: "ops-secret-1"},
		}
		if err := e.mgr.SyncConfig(ctx, accounts); err != nil {
			t.Fatal(err)
		}
		bot, err := e.store.Get(ctx, auth.ConfigKeyID("bot"))
		if err != nil {
			t.Fatal(err)
		}
		if bot.ID != "cfg-bot" || bot.Name != "bot" || bot.Source != auth.SourceConfig || bot.Disabled ||
			bot.TeamID != "team-a" || bot.AppID != "app-1" || bot.Limit.RPM != 10 || bot.Meta["dm_policy"] != "open" ||
			bot.Hash != auth.HashKey("bot-secret-1") || !slices.Equal(bot.Scopes, auth.Scopes{auth.ScopeChat}) {
			t.Fatalf("config key bot = %+v", bot)
		}
		ops, err := e.store.Get(ctx, "cfg-ops")
		if err != nil || ops.Name != "Operations" || !ops.Disabled || ops.TeamID != auth.DefaultTeam {
			t.Fatalf("config key ops = %+v, %v", ops, err)
		}
		for _, id := range []string{"cfg-bot", "cfg-ops"} {
			if ev := lastEvent(t, e.store, id); ev.Action != auth.AuditKeyConfig || ev.Reason != "loaded" {
				t.Fatalf("event for %s = %+v", id, ev)
			}
		}
		authOK(t, e, "bot-secret-1", "cfg-bot")
		_, err = e.authn.Authenticate(ctx, "ops-secret-1", loopback)
		wantErr(t, err, auth.ErrKeyDisabled)

		// The same config again changes nothing.
		before := storeState(t, e.store)
		if err := e.mgr.SyncConfig(ctx, accounts); err != nil {
			t.Fatal(err)
		}
		unchanged(t, e.store, before, "syncing an unchanged config")

		// A changed account is updated in place, keeping usage and creation time.
		if err := e.authn.Charge(ctx, "cfg-bot", 3); err != nil {
			t.Fatal(err)
		}
		if err := e.authn.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Hour)
		accounts[0].Secret = "bot-secret-2"
		accounts[0].Meta = map[string]string{"dm_policy": "closed"}
		accounts[1].Enabled = true
		if err := e.mgr.SyncConfig(ctx, accounts); err != nil {
			t.Fatal(err)
		}
		bot2, err := e.store.Get(ctx, "cfg-bot")
		if err != nil {
			t.Fatal(err)
		}
		if bot2.Hash != auth.HashKey("bot-secret-2") || bot2.Meta["dm_policy"] != "closed" || bot2.UsagePoints != 3 ||
			!bot2.CreateTime.Equal(bot.CreateTime) || !bot2.UpdateTime.Equal(time.Now().UTC()) {
			t.Fatalf("changed config key = %+v", bot2)
		}
		if ev := lastEvent(t, e.store, "cfg-bot"); ev.Action != auth.AuditKeyConfig || ev.Reason != "changed" {
			t.Fatalf("event for a changed account = %+v", ev)
		}
		_, err = e.authn.Authenticate(ctx, "bot-secret-1", loopback)
		wantErr(t, err, auth.ErrInvalidKey)
		authOK(t, e, "bot-secret-2", "cfg-bot")
		authOK(t, e, "ops-secret-1", "cfg-ops")

		// An account gone from the config is deleted; other keys stay.
		if err := e.mgr.SyncConfig(ctx, accounts[:1]); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Get(ctx, "cfg-ops"); !errors.Is(err, auth.ErrKeyNotFound) {
			t.Fatalf("a removed account's key remains: %v", err)
		}
		if ev := lastEvent(t, e.store, "cfg-ops"); ev.Action != auth.AuditKeyConfig || ev.Reason != "removed from config" {
			t.Fatalf("event for a removed account = %+v", ev)
		}
		_, err = e.authn.Authenticate(ctx, "ops-secret-1", loopback)
		wantErr(t, err, auth.ErrInvalidKey)
		authOK(t, e, apiSecret, api.ID)
		authOK(t, e, "bot-secret-2", "cfg-bot")

		// A secret freed by a removed account may be used by a new one at once.
		if err := e.mgr.SyncConfig(ctx, []auth.ConfigKey{{Account: "newbot", Enabled: true, Secret: "bot-secret-2"}}); err != nil {
			t.Fatalf("moving a secret to a new account: %v", err)
		}
		authOK(t, e, "bot-secret-2", "cfg-newbot")

		// An empty config removes every config key and nothing else.
		if err := e.mgr.SyncConfig(ctx, nil); err != nil {
			t.Fatal(err)
		}
		ks, _ := e.store.List(ctx, auth.Filter{})
		if len(ks) != 1 || ks[0].ID != api.ID {
			t.Fatalf("keys after an empty config = %v", ks)
		}
	})
}

func TestSyncConfigRejects(t *testing.T) {
	e := newEnv(t, nil, auth.Options{})
	_, generated := e.create(t, auth.KeySpec{Name: "api"})
	if _, err := e.mgr.Import(ctx, auth.KeySpec{Name: "imp"}, "imported-secret"); err != nil {
		t.Fatal(err)
	}
	current := []auth.ConfigKey{
		{Account: "a", Enabled: true, Secret: "a-secret"},
		{Account: "m", Enabled: true, Secret: "m-secret"},
	}
	if err := e.mgr.SyncConfig(ctx, current); err != nil {
		t.Fatal(err)
	}
	before := storeState(t, e.store)
	ok := func(account, secret string) auth.ConfigKey {
		return auth.ConfigKey{Account: account, Enabled: true, Secret: secret}
	}
	cases := []struct {
		name  string
		keys  []auth.ConfigKey
		field string
	}{
		{"an account without a name", []auth.ConfigKey{ok("", "x-secret")}, "channels.api.accounts"},
		{"a short secret", []auth.ConfigKey{ok("b", "b-secret"), ok("x", "abc")}, "channels.api.accounts.x.api_key"},
		{"a secret with a space", []auth.ConfigKey{ok("x", "has space")}, "channels.api.accounts.x.api_key"},
		{"a malformed prefixed secret", []auth.ConfigKey{ok("x", "cg-not-generated-1")}, "channels.api.accounts.x.api_key"},
		{"an account declared twice", []auth.ConfigKey{ok("x", "x-secret"), ok("x", "x-secret-2")}, "channels.api.accounts.x"},
		{"two accounts with one secret", []auth.ConfigKey{ok("x", "same-secret"), ok("y", "same-secret")}, "channels.api.accounts.y.api_key"},
		{"an unknown scope", []auth.ConfigKey{{Account: "x", Secret: "x-secret", Scopes: auth.Scopes{"god"}}}, "scopes"},
		// Keys made through the API keep their secrets: the config cannot
		// take them over. The check comes before any other change: a is
		// not removed, b not created, m not changed.
		{"a secret of a generated key", []auth.ConfigKey{ok("b", "b-secret"), {Account: "m", Secret: "m-secret"}, ok("z", generated)}, "channels.api.accounts.z.api_key"},
		{"a secret of an imported key", []auth.ConfigKey{ok("b", "b-secret"), ok("z", "imported-secret")}, "channels.api.accounts.z.api_key"},
		{"a secret of an imported key, first", []auth.ConfigKey{ok("0", "imported-secret"), ok("b", "b-secret")}, "channels.api.accounts.0.api_key"},
	}
	for _, c := range cases {
		err := e.mgr.SyncConfig(ctx, c.keys)
		wantInvalidField(t, err, c.field)
		unchanged(t, e.store, before, "SyncConfig with "+c.name)
	}
	authOK(t, e, "a-secret", "cfg-a")
}

func TestEnsureRootKeyGenerated(t *testing.T) {
	store := auth.NewMemoryStore()
	e := newEnv(t, store, auth.Options{})
	secret, err := e.mgr.EnsureRootKey(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, auth.DefaultPrefix) {
		t.Fatalf("generated root secret %q", secret)
	}
	root, err := store.Get(ctx, auth.RootKeyID)
	if err != nil {
		t.Fatal(err)
	}
	if root.Source != auth.SourceRoot || !slices.Equal(root.Scopes, auth.Scopes{auth.ScopeAdmin}) ||
		root.Hash != auth.HashKey(secret) || root.TeamID != auth.DefaultTeam {
		t.Fatalf("root key = %+v", root)
	}
	if ev := lastEvent(t, store, auth.RootKeyID); ev.Action != auth.AuditRootKeyReady || ev.Reason != "created" {
		t.Fatalf("root event = %+v", ev)
	}
	if p := authOK(t, e, secret, auth.RootKeyID); !p.Has(auth.ScopeAdmin) {
		t.Fatalf("root principal = %+v", p)
	}

	// Shown once: later calls, in this process or the next, return nothing
	// and change nothing.
	before := storeState(t, store)
	for range 2 {
		again, err := e.mgr.EnsureRootKey(ctx, "")
		if err != nil || again != "" {
			t.Fatalf("second EnsureRootKey = %q, %v; want nothing", again, err)
		}
	}
	e2 := newEnv(t, store, auth.Options{})
	if again, err := e2.mgr.EnsureRootKey(ctx, ""); err != nil || again != "" {
		t.Fatalf("EnsureRootKey after a restart = %q, %v", again, err)
	}
	unchanged(t, store, before, "EnsureRootKey with a root key present")
	authOK(t, e2, secret, auth.RootKeyID)

	// A disabled root key with no other admin is replaced by a new one.
	root.Disabled = true
	if err := store.Update(ctx, root, nil); err != nil {
		t.Fatal(err)
	}
	e.authn.Invalidate(auth.RootKeyID)
	fresh, err := e.mgr.EnsureRootKey(ctx, "")
	if err != nil || fresh == "" || fresh == secret {
		t.Fatalf("EnsureRootKey with the root key disabled = %q, %v", fresh, err)
	}
	replaced, _ := store.Get(ctx, auth.RootKeyID)
	if replaced.Disabled || replaced.Hash != auth.HashKey(fresh) || !replaced.CreateTime.Equal(root.CreateTime) {
		t.Fatalf("replaced root key = %+v", replaced)
	}
	if ev := lastEvent(t, store, auth.RootKeyID); ev.Reason != "replaced" {
		t.Fatalf("root event = %+v", ev)
	}
	_, err = e.authn.Authenticate(ctx, secret, loopback)
	wantErr(t, err, auth.ErrInvalidKey)
	authOK(t, e, fresh, auth.RootKeyID)
}

func TestEnsureRootKeyNotNeeded(t *testing.T) {
	// Any enabled admin key is enough: no root key is made.
	e := newEnv(t, nil, auth.Options{})
	e.create(t, auth.KeySpec{Name: "disabled admin", Scopes: auth.Scopes{auth.ScopeAdmin}})
	ks, _ := e.store.List(ctx, auth.Filter{})
	yes := true
	if _, err := e.mgr.Update(ctx, "", ks[0].ID, auth.KeyUpdate{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	e.create(t, auth.KeySpec{Name: "not admin", Scopes: auth.Scopes{auth.ScopeChat, auth.ScopeBillingRead}})
	secret, err := e.mgr.EnsureRootKey(ctx, "")
	if err != nil || secret == "" {
		t.Fatalf("EnsureRootKey with no enabled admin key = %q, %v; want a new key", secret, err)
	}

	e2 := newEnv(t, nil, auth.Options{})
	e2.create(t, auth.KeySpec{Name: "admin", Scopes: auth.Scopes{auth.ScopeAdmin}})
	before := storeState(t, e2.store)
	secret, err = e2.mgr.EnsureRootKey(ctx, "")
	if err != nil || secret != "" {
		t.Fatalf("EnsureRootKey with an admin key = %q, %v; want nothing", secret, err)
	}
	unchanged(t, e2.store, before, "EnsureRootKey with an admin key")
}

func TestEnsureRootKeyFromSecret(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil, auth.Options{})
		_, other := e.create(t, auth.KeySpec{Name: "other"})
		const s1, s2 = "root-secret-one", "root-secret-two"
		if shown, err := e.mgr.EnsureRootKey(ctx, s1); err != nil || shown != "" {
			t.Fatalf("EnsureRootKey(secret) = %q, %v; the caller's secret is never shown", shown, err)
		}
		authOK(t, e, s1, auth.RootKeyID)
		before := storeState(t, e.store)
		if shown, err := e.mgr.EnsureRootKey(ctx, s1); err != nil || shown != "" {
			t.Fatalf("EnsureRootKey(same secret) = %q, %v", shown, err)
		}
		unchanged(t, e.store, before, "EnsureRootKey with the same secret")

		time.Sleep(time.Hour)
		if _, err := e.mgr.EnsureRootKey(ctx, s2); err != nil {
			t.Fatal(err)
		}
		if ev := lastEvent(t, e.store, auth.RootKeyID); ev.Action != auth.AuditRootKeyReady || ev.Reason != "replaced" {
			t.Fatalf("root event = %+v", ev)
		}
		_, err := e.authn.Authenticate(ctx, s1, loopback)
		wantErr(t, err, auth.ErrInvalidKey)
		authOK(t, e, s2, auth.RootKeyID)

		before = storeState(t, e.store)
		_, err = e.mgr.EnsureRootKey(ctx, "abc")
		wantInvalidField(t, err, "key")
		unchanged(t, e.store, before, "EnsureRootKey with a short secret")
		_, err = e.mgr.EnsureRootKey(ctx, other)
		if !errors.Is(err, auth.ErrHashInUse) {
			t.Fatalf("EnsureRootKey with another key's secret: err = %v, want ErrHashInUse", err)
		}
		unchanged(t, e.store, before, "EnsureRootKey with another key's secret")
		authOK(t, e, s2, auth.RootKeyID)
	})
}
