package server_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
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
	_, e := envCall(t, "GET", base+"/api/support/openapi/list", sdkAdmin, "")
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

// TestErrorTable sends each row of the README's error table through the
// real server and checks the status, the statusText, and that the failed
// request changed no key.
func TestErrorTable(t *testing.T) {
	base, _ := sdkServer(t, nil)
	url := base + "/api/support/openapi/me"
	_, appKey := createKeyFull(t, base, `{"name":"app","appId":"main"}`)
	_, garbled := createKeyFull(t, base, `{"name":"checksum"}`)
	flip := "A"
	if strings.HasSuffix(garbled, "A") {
		flip = "B"
	}
	badChecksum := garbled[:len(garbled)-1] + flip // same shape, wrong checksum
	revokedID, revoked := createKeyFull(t, base, `{"name":"revoked"}`)
	envCall(t, "DELETE", base+"/api/support/openapi/delete?id="+revokedID, sdkAdmin, "")
	rotatedID, rotated := createKeyFull(t, base, `{"name":"rotated"}`)
	envCall(t, "POST", base+"/api/support/openapi/rotate", sdkAdmin, `{"id":"`+rotatedID+`","graceSeconds":0}`)
	disabledID, disabled := createKeyFull(t, base, `{"name":"disabled"}`)
	envCall(t, "PUT", base+"/api/support/openapi/update", sdkAdmin, `{"id":"`+disabledID+`","disabled":true}`)
	_, expiring := createKeyFull(t, base, `{"name":"expiring","limit":{"expiredTime":"`+time.Now().Add(1500*time.Millisecond).UTC().Format(time.RFC3339Nano)+`"}}`)
	_, fenced := createKeyFull(t, base, `{"name":"fenced","allowedIPs":["10.0.0.0/8"]}`)
	_, thrifty := createKeyFull(t, base, `{"name":"thrifty","appId":"main","limit":{"maxUsagePoints":0.001}}`)
	_, slow := createKeyFull(t, base, `{"name":"slow","limit":{"rpm":1}}`)

	// spend thrifty's points, and slow's one request a minute
	if resp, _ := curl(t, "POST", base+"/api/v1/chat/completions", thrifty, `{"messages":[{"role":"user","content":"hi"}]}`); resp.StatusCode != 200 {
		t.Fatalf("first chat: %d", resp.StatusCode)
	}
	if resp, _ := envCall(t, "GET", url, slow, ""); resp.StatusCode != 200 {
		t.Fatalf("first call of the rpm-1 key: %d", resp.StatusCode)
	}
	time.Sleep(1600 * time.Millisecond) // past the expiring key's expiry

	before := keySnapshot(t, base)
	for _, tc := range []struct {
		name, method, url, header, body string
		status                          int
		statusText, field               string
	}{
		{"no header", "GET", url, "", "", 401, "invalid_api_key", ""},
		{"garbled header", "GET", url, "Basic abc", "", 401, "invalid_api_key", ""},
		{"unknown key", "GET", url, "Bearer cg-unknownunknownunknownunknownunknownunkno000000", "", 401, "invalid_api_key", ""},
		{"bad checksum", "GET", url, "Bearer " + badChecksum, "", 401, "invalid_api_key", ""},
		{"revoked", "GET", url, "Bearer " + revoked, "", 401, "invalid_api_key", ""},
		{"rotated past grace", "GET", url, "Bearer " + rotated, "", 401, "invalid_api_key", ""},
		{"disabled", "GET", url, "Bearer " + disabled, "", 401, "api_key_disabled", ""},
		{"expired", "GET", url, "Bearer " + expiring, "", 401, "api_key_expired", ""},
		{"ip not allowed", "GET", url, "Bearer " + fenced, "", 403, "ip_not_allowed", ""},
		{"scope missing", "GET", base + "/api/support/openapi/list", "Bearer " + appKey, "", 403, "scope_denied", ""},
		{"points spent", "GET", url, "Bearer " + thrifty, "", 429, "insufficient_quota", ""},
		{"rate limited", "GET", url, "Bearer " + slow, "", 429, "rate_limit_exceeded", ""},
		{"bad field type", "POST", base + "/api/support/openapi/create", "Bearer " + sdkAdmin, `{"name":5}`, 400, "invalid_request", "name"},
		{"unknown field", "POST", base + "/api/support/openapi/create", "Bearer " + sdkAdmin, `{"name":"x","colour":"red"}`, 400, "invalid_request", "colour"},
		{"bad limit", "POST", base + "/api/support/openapi/create", "Bearer " + sdkAdmin, `{"name":"x","limit":{"rpm":-1}}`, 400, "invalid_request", "limit.rpm"},
		{"bad expiry", "POST", base + "/api/support/openapi/create", "Bearer " + sdkAdmin, `{"name":"x","limit":{"expiredTime":"soon"}}`, 400, "invalid_request", "expiredTime"},
		{"bad CIDR", "POST", base + "/api/support/openapi/create", "Bearer " + sdkAdmin, `{"name":"x","allowedIPs":["not-an-ip"]}`, 400, "invalid_request", "allowedIPs"},
		{"malformed JSON", "POST", base + "/api/support/openapi/create", "Bearer " + sdkAdmin, `{"name":`, 400, "invalid_request", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e envelope
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || e.Code != tc.status || e.StatusText != tc.statusText || e.Message == "" {
				t.Fatalf("HTTP %d %+v; want %d %s", resp.StatusCode, e, tc.status, tc.statusText)
			}
			if tc.field != "" && !strings.Contains(e.Message, tc.field) {
				t.Fatalf("message %q does not name %s", e.Message, tc.field)
			}
			if tc.statusText == "rate_limit_exceeded" {
				if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra <= 0 {
					t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
				}
			}
		})
	}
	if after := keySnapshot(t, base); after != before {
		t.Fatalf("failed requests changed the keys:\nbefore %s\nafter  %s", before, after)
	}
}
