package auth_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/auth"
)

// warnings returns the warning-level records.
func (r *records) warnings() []string { return r.at(slog.LevelWarn) }

// Replacing a stored root key with CHATGATE_ROOT_KEY is logged as a
// warning naming the replaced key by hint (never its secret); setting the
// same secret again, or a first root key, is not.
func TestEnsureRootKeyReplacementWarns(t *testing.T) {
	log := &records{}
	e := newEnv(t, nil, auth.Options{Logger: slog.New(log)})
	first, err := e.mgr.EnsureRootKey(ctx, "") // the key a first start prints
	if err != nil || first == "" {
		t.Fatal(first, err)
	}
	old, _ := e.store.Get(ctx, auth.RootKeyID)
	if _, err := e.mgr.EnsureRootKey(ctx, "operator-chosen-root"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.mgr.EnsureRootKey(ctx, "operator-chosen-root"); err != nil { // the same again: no news
		t.Fatal(err)
	}
	now, _ := e.store.Get(ctx, auth.RootKeyID)
	got := log.warnings()
	want := "auth: CHATGATE_ROOT_KEY replaces the stored root key; the replaced key no longer works replaced_hint=" + old.Hint + " hint=" + now.Hint
	if len(got) != 1 || got[0] != want {
		t.Fatalf("warnings %q\nwant [%s]", got, want)
	}
	if strings.Contains(got[0], first) || strings.Contains(got[0], "operator-chosen-root") {
		t.Fatalf("the warning holds a secret: %s", got[0])
	}
	_, err = e.authn.Authenticate(ctx, first, loopback)
	wantErr(t, err, auth.ErrInvalidKey)
	authOK(t, e, "operator-chosen-root", auth.RootKeyID)
}
