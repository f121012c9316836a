package auth_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatgate/chatgate/auth"
)

const apiRootSecret = "root-secret-for-handler-tests"

// apiEnv is the key API behind an HTTP server, mounted with Register as the
// reference server mounts it: admin routes behind ScopeAdmin, /me behind any key.
// The server is in memory, so that the tests can run in a synctest bubble.
type apiEnv struct {
	*env
	client  *http.Client
	admin   string // an admin key of the default team (not the root key)
	adminID string
}

func newAPI(t *testing.T) *apiEnv {
	t.Helper()
	e := newEnv(t, nil, auth.Options{Logger: discardLogger()})
	mux := http.NewServeMux()
	auth.NewHandler(e.mgr, auth.HandlerOptions{Logger: discardLogger()}).Register(mux, e.authn)
	client := serveInMemory(t, mux)
	if _, err := e.mgr.EnsureRootKey(ctx, apiRootSecret); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // so that lists have a known order
	k, secret := e.create(t, auth.KeySpec{Name: "admin", Scopes: auth.Scopes{auth.ScopeAdmin}})
	return &apiEnv{env: e, client: client, admin: secret, adminID: k.ID}
}

// The key API's routes are the reference server's: every one but /me needs
// ScopeAdmin and has the body limit, 1 MiB unless told; /me takes any key
// and no limit of the route's own.
func TestHandlerRoutes(t *testing.T) {
	e := newEnv(t, nil, auth.Options{})
	const me = "GET /api/support/openapi/me"
	for _, c := range []struct{ maxBody, want int64 }{{0, 1 << 20}, {512, 512}} {
		var patterns []string
		for _, r := range auth.NewHandler(e.mgr, auth.HandlerOptions{MaxBody: c.maxBody}).Routes() {
			patterns = append(patterns, r.Pattern)
			scope, limit := auth.ScopeAdmin, c.want
			if r.Pattern == me {
				scope, limit = "", 0
			}
			if r.Scope != scope || r.MaxBody != limit || r.Public || r.OnError != nil || r.Keyless != nil || r.Handler == nil {
				t.Errorf("MaxBody %d: route %+v, want scope %q and MaxBody %d", c.maxBody, r, scope, limit)
			}
		}
		want := []string{"POST /api/support/openapi/create", "POST /api/support/openapi/import",
			"GET /api/support/openapi/list", "PUT /api/support/openapi/update", "DELETE /api/support/openapi/delete",
			"POST /api/support/openapi/rotate", "GET /api/support/openapi/audit", me}
		if !slices.Equal(patterns, want) {
			t.Fatalf("routes %q, want %q", patterns, want)
		}
	}
}

// reply is a decoded envelope.
type reply struct {
	Status     int
	Code       int
	StatusText string
	Message    string
	Data       json.RawMessage
	Raw        string
}

// call sends a request with key as the bearer key and checks the envelope:
// code equal to the HTTP status; on success exactly code, statusText,
// message and data, on failure code, statusText and a message.
func (a *apiEnv) call(t *testing.T, method, path, key, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://chatgate"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatalf("%s %s: body %q: %v", method, path, raw, err)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range fields {
			if !yield(k) {
				return
			}
		}
	})
	r := reply{Status: resp.StatusCode, Raw: string(raw), Data: fields["data"]}
	var env struct {
		Code       *int    `json:"code"`
		StatusText *string `json:"statusText"`
		Message    *string `json:"message"`
	}
	if err := json.Unmarshal(raw, &env); err != nil || env.Code == nil || env.StatusText == nil || env.Message == nil {
		t.Fatalf("%s %s: not an envelope: %s", method, path, raw)
	}
	r.Code, r.StatusText, r.Message = *env.Code, *env.StatusText, *env.Message
	if r.Code != r.Status {
		t.Fatalf("%s %s: envelope code %d, HTTP status %d", method, path, r.Code, r.Status)
	}
	if r.Status == http.StatusOK {
		if !slices.Equal(names, []string{"code", "data", "message", "statusText"}) {
			t.Fatalf("%s %s: success envelope fields %v: %s", method, path, names, raw)
		}
	} else {
		if !slices.Equal(names, []string{"code", "message", "statusText"}) || r.Message == "" || r.StatusText == "" {
			t.Fatalf("%s %s: failure envelope fields %v: %s", method, path, names, raw)
		}
	}
	return r
}

// ok calls and requires a 200, decoding data into v when v is not nil.
func (a *apiEnv) ok(t *testing.T, method, path, key, body string, v any) reply {
	t.Helper()
	r := a.call(t, method, path, key, body)
	if r.Status != http.StatusOK {
		t.Fatalf("%s %s %s: %d %s", method, path, body, r.Status, r.Raw)
	}
	if v != nil {
		if err := json.Unmarshal(r.Data, v); err != nil {
			t.Fatalf("%s %s: data %s: %v", method, path, r.Data, err)
		}
	}
	return r
}

// fails calls and requires the given status and statusText.
func (a *apiEnv) fails(t *testing.T, method, path, key, body string, status int, statusText string) reply {
	t.Helper()
	r := a.call(t, method, path, key, body)
	if r.Status != status || r.StatusText != statusText {
		t.Fatalf("%s %s %s: %d %s, want %d %s", method, path, body, r.Status, r.Raw, status, statusText)
	}
	return r
}

// keyReply is a key view as the API returns it, plus the key on create and rotate.
type keyReply struct {
	auth.KeyView
	Key *string `json:"key"`
}

const api = "/api/support/openapi/"

func TestHandlerLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newAPI(t)
		time.Sleep(time.Second)
		now := time.Now().UTC()
		expiry := now.Add(48 * time.Hour).Format(time.RFC3339)

		// Create.
		var c keyReply
		a.ok(t, "POST", api+"create", a.admin, `{"name":"bot","appId":"app-1","scopes":["chat","dataset:read"],
		"limit":{"maxUsagePoints":100,"rpm":60,"expiredTime":"`+expiry+`"},"allowedIPs":["127.0.0.1","10.0.0.0/8"]}`, &c)
		if c.Key == nil || !strings.HasPrefix(*c.Key, auth.DefaultPrefix) {
			t.Fatalf("create did not show the key: %+v", c)
		}
		secret := *c.Key
		if c.Name != "bot" || c.AppID != "app-1" || c.TeamID != auth.DefaultTeam || c.Source != auth.SourceGenerated ||
			!slices.Equal(c.Scopes, auth.Scopes{auth.ScopeChat, auth.ScopeDatasetRead}) ||
			c.Limit.MaxUsagePoints != 100 || c.Limit.RPM != 60 || c.Limit.ExpiredTime == nil ||
			c.Limit.ExpiredTime.Format(time.RFC3339) != expiry ||
			!slices.Equal(c.AllowedIPs, []string{"127.0.0.1/32", "10.0.0.0/8"}) || c.LastUsedTime != nil ||
			c.UsagePoints != 0 || !c.CreateTime.Equal(now) || c.Disabled {
			t.Fatalf("created view = %+v", c.KeyView)
		}
		stored, err := a.store.Get(ctx, c.ID)
		if err != nil || stored.Hash != auth.HashKey(secret) || stored.Hint != c.Hint || stored.Limit.MaxUsagePoints != 100 {
			t.Fatalf("stored key = %+v, %v", stored, err)
		}
		if ev := lastEvent(t, a.store, c.ID); ev.Action != auth.AuditKeyCreated || ev.ActorKeyID != a.adminID {
			t.Fatalf("create event = %+v", ev)
		}
		authOK(t, a.env, secret, c.ID)

		// Import: the key is not echoed back.
		time.Sleep(time.Second)
		const imported = "imported-secret-123"
		var im keyReply
		r := a.ok(t, "POST", api+"import", a.admin, `{"name":"legacy","key":"`+imported+`"}`, &im)
		if im.Key != nil || strings.Contains(r.Raw, imported) || im.Source != auth.SourceImported || im.Name != "legacy" {
			t.Fatalf("import answer = %s", r.Raw)
		}
		if im.Limit.MaxUsagePoints != -1 || im.Limit.ExpiredTime != nil || !slices.Equal(im.AllowedIPs, []string{}) {
			t.Fatalf("imported key limits = %+v %v", im.Limit, im.AllowedIPs)
		}
		if ev := lastEvent(t, a.store, im.ID); ev.Action != auth.AuditKeyImported || ev.ActorKeyID != a.adminID {
			t.Fatalf("import event = %+v", ev)
		}
		authOK(t, a.env, imported, im.ID)

		// List: oldest first, every key of the team, never a key or a hash.
		var list []map[string]any
		r = a.ok(t, "GET", api+"list", a.admin, "", &list)
		var ids []string
		for _, v := range list {
			ids = append(ids, v["id"].(string))
			for _, f := range []string{"key", "hash", "Hash", "retired"} {
				if _, ok := v[f]; ok {
					t.Fatalf("list entry has a %q field: %v", f, v)
				}
			}
		}
		if !slices.Equal(ids, []string{auth.RootKeyID, a.adminID, c.ID, im.ID}) {
			t.Fatalf("list ids = %v", ids)
		}
		for _, s := range []string{secret, imported, a.admin, apiRootSecret} {
			h := auth.HashKey(s)
			if strings.Contains(r.Raw, s) || strings.Contains(r.Raw, h.String()) || strings.Contains(strings.ToLower(r.Raw), h.String()) {
				t.Fatalf("the list holds a key or its hash: %s", r.Raw)
			}
		}
		var appList []auth.KeyView
		a.ok(t, "GET", api+"list?appId=app-1", a.admin, "", &appList)
		if len(appList) != 1 || appList[0].ID != c.ID {
			t.Fatalf("list?appId=app-1 = %+v", appList)
		}

		// Update: fields not sent are kept, the limit is merged field by field.
		time.Sleep(time.Minute)
		var up auth.KeyView
		a.ok(t, "PUT", api+"update", a.admin, `{"id":"`+c.ID+`","name":"renamed","disabled":true,"limit":{"rpm":5}}`, &up)
		if up.Name != "renamed" || !up.Disabled || up.Limit.RPM != 5 || up.Limit.MaxUsagePoints != 100 ||
			up.Limit.ExpiredTime == nil || len(up.AllowedIPs) != 2 || !slices.Equal(up.Scopes, c.Scopes) {
			t.Fatalf("updated view = %+v", up)
		}
		_, err = a.authn.Authenticate(ctx, secret, loopback)
		wantErr(t, err, auth.ErrKeyDisabled)
		a.ok(t, "PUT", api+"update", a.admin, `{"id":"`+c.ID+`","disabled":false,"allowedIPs":[],"scopes":["chat"],
		"limit":{"expiredTime":"","maxUsagePoints":-1}}`, &up)
		if up.Disabled || len(up.AllowedIPs) != 0 || up.Limit.ExpiredTime != nil || up.Limit.MaxUsagePoints != -1 ||
			up.Limit.RPM != 5 || !slices.Equal(up.Scopes, auth.Scopes{auth.ScopeChat}) {
			t.Fatalf("updated view = %+v", up)
		}
		if k, _ := a.store.Get(ctx, c.ID); k.Limit.MaxUsagePoints != 0 || !k.Limit.ExpiredTime.IsZero() || len(k.AllowedIPs) != 0 {
			t.Fatalf("stored after update = %+v", k)
		}
		authOK(t, a.env, secret, c.ID)
		if ev := lastEvent(t, a.store, c.ID); ev.Action != auth.AuditKeyUpdated || ev.Reason != "scopes,limit,allowedIPs,disabled" {
			t.Fatalf("update event = %+v", ev)
		}

		// Rotate with a grace period.
		var rot keyReply
		a.ok(t, "POST", api+"rotate", a.admin, `{"id":"`+c.ID+`","graceSeconds":60}`, &rot)
		if rot.Key == nil || *rot.Key == secret || rot.ID != c.ID || rot.Hint == c.Hint {
			t.Fatalf("rotate answer = %+v", rot)
		}
		authOK(t, a.env, secret, c.ID)
		authOK(t, a.env, *rot.Key, c.ID)
		time.Sleep(time.Minute)
		_, err = a.authn.Authenticate(ctx, secret, loopback)
		wantErr(t, err, auth.ErrInvalidKey)
		authOK(t, a.env, *rot.Key, c.ID)
		if ev := lastEvent(t, a.store, c.ID); ev.Action != auth.AuditKeyRotated || ev.Reason != "grace=1m0s" {
			t.Fatalf("rotate event = %+v", ev)
		}
		// Without graceSeconds the old key stops at once.
		var rot2 keyReply
		a.ok(t, "POST", api+"rotate", a.admin, `{"id":"`+c.ID+`"}`, &rot2)
		_, err = a.authn.Authenticate(ctx, *rot.Key, loopback)
		wantErr(t, err, auth.ErrInvalidKey)
		authOK(t, a.env, *rot2.Key, c.ID)

		// Me: any key may ask about itself.
		var me struct {
			Principal auth.Principal `json:"principal"`
			Key       auth.KeyView   `json:"key"`
		}
		r = a.ok(t, "GET", api+"me", *rot2.Key, "", &me)
		if me.Principal.KeyID != c.ID || me.Principal.AppID != "app-1" || me.Key.ID != c.ID || me.Key.Name != "renamed" ||
			me.Key.LastUsedTime == nil || !me.Key.LastUsedTime.Equal(time.Now().UTC()) {
			t.Fatalf("me = %s", r.Raw)
		}
		if strings.Contains(r.Raw, *rot2.Key) || strings.Contains(r.Raw, auth.HashKey(*rot2.Key).String()) {
			t.Fatalf("me shows the key or its hash: %s", r.Raw)
		}

		// Delete.
		var del map[string]string
		a.ok(t, "DELETE", api+"delete?id="+im.ID, a.admin, "", &del)
		if del["id"] != im.ID {
			t.Fatalf("delete answer = %v", del)
		}
		_, err = a.authn.Authenticate(ctx, imported, loopback)
		wantErr(t, err, auth.ErrInvalidKey)
		a.fails(t, "DELETE", api+"delete?id="+im.ID, a.admin, "", 404, "not_found")
		if ev := lastEvent(t, a.store, im.ID); ev.Action != auth.AuditKeyRevoked || ev.ActorKeyID != a.adminID {
			t.Fatalf("delete event = %+v", ev)
		}

		// Audit: the team's trail, newest first, filtered and limited.
		var evs []auth.AuditEvent
		a.ok(t, "GET", api+"audit?keyId="+c.ID, a.admin, "", &evs)
		var actions []string
		for _, ev := range evs {
			if ev.Action != auth.AuditAuthFailed {
				actions = append(actions, string(ev.Action))
			}
		}
		want := []string{"key.rotated", "key.rotated", "key.updated", "key.updated", "key.created"}
		if !slices.Equal(actions, want) {
			t.Fatalf("audit?keyId = %v, want %v", actions, want)
		}
		a.ok(t, "GET", api+"audit?action=key.revoked", a.admin, "", &evs)
		if len(evs) != 1 || evs[0].KeyID != im.ID {
			t.Fatalf("audit?action=key.revoked = %+v", evs)
		}
		a.ok(t, "GET", api+"audit?limit=2", a.admin, "", &evs)
		if len(evs) != 2 || evs[0].Seq <= evs[1].Seq {
			t.Fatalf("audit?limit=2 = %+v", evs)
		}
		a.ok(t, "GET", api+"audit?action=key.nothing", a.admin, "", &evs)
		if evs == nil || len(evs) != 0 {
			t.Fatalf("audit with no match = %#v, want []", evs)
		}
		for _, l := range []string{"0", "1001", "x", "1.5"} {
			r := a.fails(t, "GET", api+"audit?limit="+l, a.admin, "", 400, "invalid_request")
			if !strings.Contains(r.Message, `"limit"`) {
				t.Fatalf("audit?limit=%s: message %q does not name the field", l, r.Message)
			}
		}
	})
}

func TestHandlerMaxUsagePoints(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newAPI(t)
		var unl keyReply
		a.ok(t, "POST", api+"create", a.admin, `{"name":"unlimited","limit":{"maxUsagePoints":-1}}`, &unl)
		if unl.Limit.MaxUsagePoints != -1 {
			t.Fatalf("maxUsagePoints -1 answered as %v", unl.Limit.MaxUsagePoints)
		}
		k, _ := a.store.Get(ctx, unl.ID)
		if k.Limit.MaxUsagePoints > 0 {
			t.Fatalf("stored quota for -1 = %v, want unlimited", k.Limit.MaxUsagePoints)
		}
		if err := a.authn.Charge(ctx, unl.ID, 1e9); err != nil {
			t.Fatal(err)
		}
		authOK(t, a.env, *unl.Key, unl.ID)

		var lim keyReply
		a.ok(t, "POST", api+"create", a.admin, `{"name":"limited","limit":{"maxUsagePoints":2.5}}`, &lim)
		if lim.Limit.MaxUsagePoints != 2.5 {
			t.Fatalf("maxUsagePoints 2.5 answered as %v", lim.Limit.MaxUsagePoints)
		}
		if err := a.authn.Charge(ctx, lim.ID, 2.5); err != nil {
			t.Fatal(err)
		}
		_, err := a.authn.Authenticate(ctx, *lim.Key, loopback)
		wantErr(t, err, auth.ErrInsufficientQuota)
		// Lifting the quota with -1 lets it through again.
		var up auth.KeyView
		a.ok(t, "PUT", api+"update", a.admin, `{"id":"`+lim.ID+`","limit":{"maxUsagePoints":-1}}`, &up)
		if up.Limit.MaxUsagePoints != -1 {
			t.Fatalf("updated maxUsagePoints = %v", up.Limit.MaxUsagePoints)
		}
		authOK(t, a.env, *lim.Key, lim.ID)

		before := storeState(t, a.store)
		for _, v := range []string{"0", "-2", "-0.5", "1e400"} {
			for _, req := range []struct{ method, path, body string }{
				{"POST", "create", `{"name":"x","limit":{"maxUsagePoints":` + v + `}}`},
				{"POST", "import", `{"name":"x","key":"some-import-key","limit":{"maxUsagePoints":` + v + `}}`},
				{"PUT", "update", `{"id":"` + lim.ID + `","limit":{"maxUsagePoints":` + v + `}}`},
			} {
				r := a.fails(t, req.method, api+req.path, a.admin, req.body, 400, "invalid_request")
				if !strings.Contains(r.Message, "maxUsagePoints") {
					t.Fatalf("%s maxUsagePoints %s: message %q does not name the field", req.path, v, r.Message)
				}
				unchanged(t, a.store, before, req.path+" with maxUsagePoints "+v)
			}
		}
	})
}

func TestHandlerBadRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newAPI(t)
		var c keyReply
		a.ok(t, "POST", api+"create", a.admin, `{"name":"target"}`, &c)
		id := c.ID
		before := storeState(t, a.store)

		cases := []struct {
			method, path, body string
			field              string // named in the message; "" when no field can be named
		}{
			// Malformed bodies.
			{"POST", "create", `{"name":`, ""},
			{"POST", "create", `{"name":"x"`, ""},
			{"POST", "create", `name=x`, ""},
			{"POST", "create", ``, ""},
			{"POST", "create", `{"name":"x"} {"name":"y"}`, ""},
			{"POST", "create", `[]`, "body"},
			{"PUT", "update", `{"id":`, ""},
			{"POST", "rotate", `nope`, ""},
			{"POST", "import", `{`, ""},
			// Unknown fields.
			{"POST", "create", `{"name":"x","secret":"y"}`, "secret"},
			{"POST", "create", `{"name":"x","limit":{"rpm":1,"burst":2}}`, "burst"},
			{"POST", "import", `{"name":"x","key":"abcdefg","hash":"00"}`, "hash"},
			{"PUT", "update", `{"id":"` + id + `","source":"root"}`, "source"},
			{"POST", "rotate", `{"id":"` + id + `","grace":60}`, "grace"},
			// Wrong types.
			{"POST", "create", `{"name":5}`, "name"},
			{"POST", "create", `{"name":"x","scopes":"chat"}`, "scopes"},
			{"POST", "create", `{"name":"x","allowedIPs":"127.0.0.1"}`, "allowedIPs"},
			{"POST", "create", `{"name":"x","limit":{"rpm":"fast"}}`, "limit.rpm"},
			{"POST", "create", `{"name":"x","limit":{"rpm":1.5}}`, "limit.rpm"},
			{"POST", "create", `{"name":"x","limit":{"maxUsagePoints":"10"}}`, "limit.maxUsagePoints"},
			{"POST", "create", `{"name":"x","limit":"none"}`, "limit"},
			{"POST", "import", `{"name":"x","key":12345}`, "key"},
			{"PUT", "update", `{"id":"` + id + `","disabled":"yes"}`, "disabled"},
			{"PUT", "update", `{"id":42}`, "id"},
			{"POST", "rotate", `{"id":"` + id + `","graceSeconds":"60"}`, "graceSeconds"},
			{"POST", "rotate", `{"id":"` + id + `","graceSeconds":1.5}`, "graceSeconds"},
			// Bad values.
			{"POST", "create", `{"name":""}`, "name"},
			{"POST", "create", `{"name":"x","scopes":["chat","root"]}`, "scopes"},
			{"POST", "create", `{"name":"x","allowedIPs":["127.0.0.1","not-an-ip"]}`, "allowedIPs"},
			{"POST", "create", `{"name":"x","limit":{"rpm":-1}}`, "limit.rpm"},
			{"POST", "create", `{"name":"x","limit":{"expiredTime":"tomorrow"}}`, "limit.expiredTime"},
			{"POST", "create", `{"name":"x","key":"my-own-key"}`, "key"},
			{"POST", "import", `{"name":"x","key":"abcd"}`, "key"},
			{"POST", "import", `{"name":"x"}`, "key"},
			{"POST", "import", `{"name":"x","key":"cg-not-a-generated-key"}`, "key"},
			{"POST", "import", `{"name":"","key":"abcdefgh"}`, "name"},
			{"PUT", "update", `{"name":"x"}`, "id"},
			{"PUT", "update", `{"id":"` + id + `","name":"  "}`, "name"},
			{"PUT", "update", `{"id":"` + id + `","scopes":[]}`, "scopes"},
			{"PUT", "update", `{"id":"` + id + `","allowedIPs":["300.1.1.1"]}`, "allowedIPs"},
			{"PUT", "update", `{"id":"` + id + `","limit":{"rpm":-3}}`, "limit.rpm"},
			{"PUT", "update", `{"id":"` + id + `","limit":{"expiredTime":"2027-13-01T00:00:00Z"}}`, "limit.expiredTime"},
			{"POST", "rotate", `{}`, "id"},
			{"POST", "rotate", `{"id":"` + id + `","graceSeconds":2592001}`, "graceSeconds"},
			{"POST", "rotate", `{"id":"` + id + `","graceSeconds":-1}`, "graceSeconds"},
			{"DELETE", "delete", ``, "id"},
			{"DELETE", "delete?id=" + a.adminID, ``, "id"},
		}
		for _, c := range cases {
			r := a.fails(t, c.method, api+c.path, a.admin, c.body, 400, "invalid_request")
			if c.field != "" && !strings.Contains(r.Message, `"`+c.field+`"`) {
				t.Fatalf("%s %s %s: message %q does not name the field %q", c.method, c.path, c.body, r.Message, c.field)
			}
			unchanged(t, a.store, before, fmt.Sprintf("%s %s %s", c.method, c.path, c.body))
		}
		// An empty update is refused too, and a missing id is a 404.
		a.fails(t, "PUT", api+"update", a.admin, `{"id":"`+id+`"}`, 400, "invalid_request")
		a.fails(t, "PUT", api+"update", a.admin, `{"id":"missing","name":"x"}`, 404, "not_found")
		a.fails(t, "PUT", api+"update", a.admin, `{"id":"missing","limit":{"rpm":1}}`, 404, "not_found")
		a.fails(t, "POST", api+"rotate", a.admin, `{"id":"missing"}`, 404, "not_found")
		a.fails(t, "DELETE", api+"delete?id=missing", a.admin, ``, 404, "not_found")
		// Config and root keys are read-only through the API.
		for _, body := range []string{`{"id":"root","disabled":true}`, `{"id":"root","limit":{"rpm":1}}`} {
			a.fails(t, "PUT", api+"update", a.admin, body, 409, "key_managed_by_config")
		}
		a.fails(t, "POST", api+"rotate", a.admin, `{"id":"root"}`, 409, "key_managed_by_config")
		a.fails(t, "DELETE", api+"delete?id=root", a.admin, ``, 409, "key_managed_by_config")
		// Importing a key that is already registered is refused as a bad key
		// is, with one answer whatever key holds it and no hint that one does.
		a.ok(t, "POST", api+"import", a.admin, `{"name":"x","key":"dup-key-1"}`, nil)
		before = storeState(t, a.store)
		var answers []string
		for _, k := range []string{"dup-key-1", apiRootSecret, a.admin} {
			r := a.fails(t, "POST", api+"import", a.admin, `{"name":"y","key":"`+k+`"}`, 400, "invalid_request")
			if strings.Contains(r.Raw, k) || strings.Contains(r.Raw, "already") || strings.Contains(r.Raw, "registered") {
				t.Fatalf("the refusal tells the key exists: %s", r.Raw)
			}
			if !strings.Contains(r.Raw, `\"key\"`) {
				t.Fatalf("the refusal does not name the key field: %s", r.Raw)
			}
			answers = append(answers, r.Raw)
		}
		if answers[0] != answers[1] || answers[1] != answers[2] {
			t.Fatalf("refusals differ: %q", answers)
		}
		unchanged(t, a.store, before, "duplicate imports")
	})
}

func TestHandlerScopeDenied(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newAPI(t)
		var target keyReply
		a.ok(t, "POST", api+"create", a.admin, `{"name":"target"}`, &target)
		_, data := a.create(t, auth.KeySpec{Name: "data", Scopes: auth.Scopes{auth.ScopeDatasetRead, auth.ScopeDatasetWrite, auth.ScopeBillingRead}})
		chatKey, chat := a.create(t, auth.KeySpec{Name: "chat", AppID: "app-1"})
		before := storeState(t, a.store)
		routes := []struct{ method, path, body string }{
			{"POST", "create", `{"name":"sneaky","scopes":["admin"]}`},
			{"POST", "import", `{"name":"sneaky","key":"sneaky-key"}`},
			{"GET", "list", ``},
			{"PUT", "update", `{"id":"` + target.ID + `","disabled":true}`},
			{"DELETE", "delete?id=" + target.ID, ``},
			{"POST", "rotate", `{"id":"` + target.ID + `"}`},
			{"GET", "audit", ``},
		}
		for _, key := range []string{data, chat} {
			for _, rt := range routes {
				r := a.fails(t, rt.method, api+rt.path, key, rt.body, 403, "scope_denied")
				if strings.Contains(r.Raw, target.ID) {
					t.Fatalf("a denied answer leaks data: %s", r.Raw)
				}
			}
		}
		for _, rt := range routes {
			a.fails(t, rt.method, api+rt.path, "", rt.body, 401, "invalid_api_key")
			a.fails(t, rt.method, api+rt.path, "not-a-key-at-all", rt.body, 401, "invalid_api_key")
		}
		unchanged(t, a.store, before, "requests without the admin scope")
		authOK(t, a.env, *target.Key, target.ID)

		// Any valid key may read its own /me.
		var me struct {
			Principal auth.Principal `json:"principal"`
			Key       auth.KeyView   `json:"key"`
		}
		a.ok(t, "GET", api+"me", chat, "", &me)
		if me.Principal.KeyID != chatKey.ID || me.Key.ID != chatKey.ID || me.Principal.Has(auth.ScopeAdmin) {
			t.Fatalf("me for a chat key = %+v", me)
		}
		a.fails(t, "GET", api+"me", "", "", 401, "invalid_api_key")
	})
}

func TestHandlerTeams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newAPI(t)
		var mine keyReply
		a.ok(t, "POST", api+"create", a.admin, `{"name":"default team key"}`, &mine)
		_, adminB := a.create(t, auth.KeySpec{Name: "admin b", TeamID: "team-b", Scopes: auth.Scopes{auth.ScopeAdmin}})

		// A team admin may not create keys for another team, by create or import.
		before := storeState(t, a.store)
		for _, req := range []struct{ path, body, key string }{
			{"create", `{"name":"x","teamId":"default"}`, adminB},
			{"import", `{"name":"x","teamId":"default","key":"cross-team-key"}`, adminB},
			{"create", `{"name":"x","teamId":"team-c"}`, a.admin},
		} {
			r := a.fails(t, "POST", api+req.path, req.key, req.body, 400, "invalid_request")
			if !strings.Contains(r.Message, `"teamId"`) {
				t.Fatalf("message %q does not name teamId", r.Message)
			}
		}
		unchanged(t, a.store, before, "creating keys for another team")

		// Naming its own team is fine.
		var b1 keyReply
		a.ok(t, "POST", api+"create", adminB, `{"name":"b1","teamId":"team-b"}`, &b1)
		if b1.TeamID != "team-b" {
			t.Fatalf("team of a key made by team-b's admin = %q", b1.TeamID)
		}
		var b2 keyReply
		a.ok(t, "POST", api+"create", adminB, `{"name":"b2"}`, &b2)
		if b2.TeamID != "team-b" {
			t.Fatalf("a key created without teamId is in %q, want the caller's team", b2.TeamID)
		}

		// Another team's keys are invisible: not listed, not found.
		var list []auth.KeyView
		r := a.ok(t, "GET", api+"list", adminB, "", &list)
		for _, v := range list {
			if v.TeamID != "team-b" {
				t.Fatalf("team-b's list shows %+v", v)
			}
		}
		if len(list) != 3 || strings.Contains(r.Raw, mine.ID) {
			t.Fatalf("team-b's list = %s", r.Raw)
		}
		before = storeState(t, a.store)
		a.fails(t, "PUT", api+"update", adminB, `{"id":"`+mine.ID+`","disabled":true}`, 404, "not_found")
		a.fails(t, "PUT", api+"update", adminB, `{"id":"`+mine.ID+`","limit":{"rpm":1}}`, 404, "not_found")
		a.fails(t, "POST", api+"rotate", adminB, `{"id":"`+mine.ID+`"}`, 404, "not_found")
		a.fails(t, "DELETE", api+"delete?id="+mine.ID, adminB, ``, 404, "not_found")
		a.fails(t, "DELETE", api+"delete?id="+auth.RootKeyID, adminB, ``, 404, "not_found")
		unchanged(t, a.store, before, "another team's changes")
		authOK(t, a.env, *mine.Key, mine.ID)

		var evs []auth.AuditEvent
		a.ok(t, "GET", api+"audit?limit=1000", adminB, "", &evs)
		for _, ev := range evs {
			if ev.TeamID != "team-b" {
				t.Fatalf("team-b's audit shows %+v", ev)
			}
		}
		a.ok(t, "GET", api+"audit?keyId="+mine.ID, adminB, "", &evs)
		if len(evs) != 0 {
			t.Fatalf("team-b sees the default team's events: %+v", evs)
		}

		// The root key may create keys in any team.
		var c keyReply
		a.ok(t, "POST", api+"create", apiRootSecret, `{"name":"for c","teamId":"team-c","scopes":["admin"]}`, &c)
		if c.TeamID != "team-c" {
			t.Fatalf("root-made key team = %q", c.TeamID)
		}
		var im keyReply
		a.ok(t, "POST", api+"import", apiRootSecret, `{"name":"imp for b","teamId":"team-b","key":"root-imported-key"}`, &im)
		if im.TeamID != "team-b" {
			t.Fatalf("root-imported key team = %q", im.TeamID)
		}
		var cList []auth.KeyView
		a.ok(t, "GET", api+"list", *c.Key, "", &cList)
		if len(cList) != 1 || cList[0].ID != c.ID {
			t.Fatalf("team-c's list = %+v", cList)
		}
	})
}
