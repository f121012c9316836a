package shareauth_test

import (
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatgate/chatgate/shareauth"
)

func TestVerifier(t *testing.T) {
	synctest.Test(t, testVerifier) // the bubble's clock stands still
}

func testVerifier(t *testing.T) {
	now := time.Now()
	v := &shareauth.Verifier{Secret: "s3cret"}
	body := []byte(`{"token":"t"}`)
	sign := func(secret string, ts int64, b []byte) (string, string) {
		return strconv.FormatInt(ts, 10), shareauth.Sign(secret, ts, b)
	}
	ts, sig := sign("s3cret", now.Unix(), body)
	if err := v.Check(ts, sig, body); err != nil {
		t.Fatalf("genuine: %v", err)
	}
	for name, tc := range map[string]struct {
		ts, sig string
		body    []byte
		want    error
	}{
		"missing":       {"", "", body, shareauth.ErrMissingSignature},
		"wrong secret":  {ts, func() string { _, s := sign("other", now.Unix(), body); return s }(), body, shareauth.ErrBadSignature},
		"altered body":  {ts, sig, []byte(`{"token":"u"}`), shareauth.ErrBadSignature},
		"moved stamp":   {strconv.FormatInt(now.Unix()+1, 10), sig, body, shareauth.ErrBadSignature},
		"garbled stamp": {"soon", sig, body, shareauth.ErrBadSignature},
		"stale replay": func() struct {
			ts, sig string
			body    []byte
			want    error
		} {
			a, b := sign("s3cret", now.Add(-10*time.Minute).Unix(), body)
			return struct {
				ts, sig string
				body    []byte
				want    error
			}{a, b, body, shareauth.ErrStale}
		}(),
		"from the future": func() struct {
			ts, sig string
			body    []byte
			want    error
		} {
			a, b := sign("s3cret", now.Add(10*time.Minute).Unix(), body)
			return struct {
				ts, sig string
				body    []byte
				want    error
			}{a, b, body, shareauth.ErrStale}
		}(),
	} {
		if err := v.Check(tc.ts, tc.sig, tc.body); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	// Verify reads the body from the request
	r := httptest.NewRequest("POST", "/shareAuth/finish", strings.NewReader(string(body)))
	r.Header.Set(shareauth.HeaderTimestamp, ts)
	r.Header.Set(shareauth.HeaderSignature, sig)
	if got, err := v.Verify(r); err != nil || string(got) != string(body) {
		t.Fatalf("Verify: %q %v", got, err)
	}
	// the signature is sha256= and the hex HMAC of "<ts>.<body>"
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != len("sha256=")+64 {
		t.Fatalf("signature shape %q", sig)
	}
}
