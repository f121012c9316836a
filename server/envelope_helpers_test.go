package server_test

// Helpers for tests that call the FastGPT-envelope routes of a server
// started with sdkServer.

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

type envelope struct {
	Code       int             `json:"code"`
	StatusText string          `json:"statusText"`
	Message    string          `json:"message"`
	Data       json.RawMessage `json:"data"`
}

func envCall(t *testing.T, method, url, key, body string) (*http.Response, envelope) {
	t.Helper()
	resp, raw := curl(t, method, url, key, body)
	var e envelope
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		t.Fatalf("%s %s: not an envelope: %d %s", method, url, resp.StatusCode, raw)
	}
	if e.Code != resp.StatusCode {
		t.Fatalf("%s %s: HTTP %d but envelope code %d", method, url, resp.StatusCode, e.Code)
	}
	return resp, e
}

// keySnapshot is the key list without the fields use changes.
func keySnapshot(t *testing.T, base string) string {
	t.Helper()
	return keySnapshotAs(t, base, sdkAdmin)
}

// keySnapshotAs is keySnapshot of the team of the admin key given.
func keySnapshotAs(t *testing.T, base, key string) string {
	t.Helper()
	_, e := envCall(t, "GET", base+"/api/support/openapi/list", key, "")
	var keys []map[string]any
	if err := json.Unmarshal(e.Data, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		delete(k, "lastUsedTime")
		delete(k, "usagePoints")
	}
	b, _ := json.Marshal(keys)
	return string(b)
}

func createKeyFull(t *testing.T, base, body string) (id, key string) {
	t.Helper()
	_, e := envCall(t, "POST", base+"/api/support/openapi/create", sdkAdmin, body)
	var d struct{ ID, Key string }
	if e.Code != 200 || json.Unmarshal(e.Data, &d) != nil {
		t.Fatalf("create %s: %+v", body, e)
	}
	return d.ID, d.Key
}

// grepLines returns the lines of s that contain sub, for checking logs.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
