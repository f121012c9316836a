package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatgate/chatgate/cl100k"
	"github.com/chatgate/chatgate/internal/boltx"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
	"github.com/chatgate/chatgate/server"
)

// mgFinishes counts the finish callbacks an auth host is sent, answered
// or not.
type mgFinishes struct {
	host     *authHost
	attempts atomic.Int32
}

func (f *mgFinishes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/shareAuth/finish" {
		f.attempts.Add(1)
	}
	f.host.ServeHTTP(w, r)
}

// mgData is what mgFill made, for the calls that compare the servers.
type mgData struct {
	key, rotatedOld, appKey string
	dataset, coll, bill     string
	shareID, keyID, teamB   string
	trainedTokens, records  int
}

// mgFill makes a data directory of every kind of record through the
// server's API: keys of two teams (an imported one, a rotated one still in
// its grace period), an app on a dataset, trained data on a bill, a search,
// chats with a chatId through an app key and through a share link whose
// auth host refuses the finish callback, which stays queued.
func mgFill(t *testing.T, base, hookURL string, fin *mgFinishes) mgData {
	t.Helper()
	var d mgData
	d.keyID, d.key = blKey(t, base, map[string]any{"name": "importer"})
	key := d.key
	d.teamB, _ = blKey(t, base, map[string]any{"name": "b", "teamId": "team-b", "scopes": []string{"chat"}})
	blCall(t, "POST", base+"/api/support/openapi/import", blRoot, `{"name":"legacy","key":"legacy-key-0123456789"}`, nil)
	rotID, rotOld := blKey(t, base, map[string]any{"name": "rotating", "limit": map[string]any{"rpm": 600}})
	blCall(t, "POST", base+"/api/support/openapi/rotate", blRoot, fmt.Sprintf(`{"id":%q,"graceSeconds":86400}`, rotID), nil)
	d.rotatedOld = rotOld

	blCall(t, "POST", base+"/api/core/dataset/create", key, `{"name":"kb"}`, &d.dataset)
	blCall(t, "POST", base+"/api/core/dataset/collection/create", key, fmt.Sprintf(`{"datasetId":%q,"name":"faq"}`, d.dataset), &d.coll)
	blCall(t, "POST", base+"/api/common/bill/createTrainingBill", key, `{"name":"import"}`, &d.bill)
	var tokens cl100k.Counter
	var items []map[string]string
	for i := range 6 {
		q := fmt.Sprintf("What is the refund window for order class %d?", i)
		items = append(items, map[string]string{"q": q, "a": fmt.Sprintf("Orders of class %d may be refunded within %d days.", i, i+3)})
		d.trainedTokens += tokens.Count(q)
	}
	body, _ := json.Marshal(map[string]any{"collectionId": d.coll, "trainingType": "chunk", "billId": d.bill, "data": items})
	blCall(t, "POST", base+"/api/core/dataset/data/pushData", key, string(body), nil)
	waitFor(t, "the training bill to fill", 15*time.Second, func() bool {
		var b struct{ TotalTokens int }
		blCall(t, "GET", base+"/api/common/bill/detail?id="+d.bill, key, "", &b)
		return b.TotalTokens == d.trainedTokens
	})
	blCall(t, "POST", base+"/api/core/dataset/searchTest", key, fmt.Sprintf(`{"datasetId":%q,"text":"refund window class 3"}`, d.dataset), nil)

	blCall(t, "POST", base+"/api/core/app/create", blRoot,
		fmt.Sprintf(`{"id":"kb","name":"KB","model":"extractive","datasetIds":[%q]}`, d.dataset), nil)
	_, d.appKey = blKey(t, base, map[string]any{"name": "kb-key", "appId": "kb"})
	for _, q := range []string{"refund window class 2", "and class 4?"} {
		if status, raw := blDo(t, "POST", base+"/api/v1/chat/completions", d.appKey,
			fmt.Sprintf(`{"chatId":"c1","detail":true,"messages":[{"role":"user","content":%q}]}`, q)); status != 200 {
			t.Fatalf("chat: %d %s", status, raw)
		}
	}

	var link struct{ ShareID string }
	blCall(t, "POST", base+"/api/support/outLink/create", blRoot,
		`{"appId":"kb","name":"pub","limit":{"hookUrl":"`+hookURL+`","maxUsagePoints":-1}}`, &link)
	d.shareID = link.ShareID
	fin.host.set(func(h *authHost) { h.down = true })
	if resp, body := shareChat(t, base, d.shareID, "alice", `,"chatId":"s1"`); resp.StatusCode != 200 {
		t.Fatalf("share-link chat: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "a refused finish callback", 10*time.Second, func() bool { return fin.attempts.Load() > 0 })
	return d
}

// mgMigrate runs the migrate command into dsn.
func mgMigrate(t *testing.T, dir, dsn string, args ...string) (string, error) {
	t.Helper()
	cfg := server.Config{}
	cfg.Server.Data = dir
	var out bytes.Buffer
	err := server.MigrateCommand(context.Background(), cfg, append([]string{"-to", dsn}, args...), &out)
	return out.String(), err
}

// mgPrinted returns the rows per table the migrate command printed.
func mgPrinted(t *testing.T, out string) map[string]int {
	t.Helper()
	rows := map[string]int{}
	_, table, _ := strings.Cut(out, "TABLE")
	for _, line := range strings.Split(table, "\n")[1:] {
		if f := strings.Fields(line); len(f) == 2 {
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("a row of the table of counts: %q", line)
			}
			rows[f[0]] = n
		}
	}
	if len(rows) == 0 {
		t.Fatalf("the migrate command printed no table:\n%s", out)
	}
	return rows
}

// mgTables returns, per chatgate table of the database, its rows and a
// digest of their content.
func mgTables(t *testing.T, dsn string) map[string]string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_name ~ '^(auth|chat|billing|shareauth|dataset)_' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range names {
		var count int
		var digest *string
		q := fmt.Sprintf(`SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM %s t`, pgx.Identifier{n}.Sanitize())
		if err := conn.QueryRow(ctx, q).Scan(&count, &digest); err != nil {
			t.Fatal(err)
		}
		out[n] = fmt.Sprintf("%d %v", count, digest)
		if digest != nil {
			out[n] = fmt.Sprintf("%d %s", count, *digest)
		}
	}
	return out
}

// A data directory made by the server moves into Postgres whole: read
// through the stores, the database holds what the directory holds, to the
// microsecond; the command prints each table's rows; a second run is
// refused and changes nothing, and -force copies again over it.
func TestMigrateToPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	fin := &mgFinishes{host: &authHost{allow: map[string]bool{"alice": true}}}
	hs := httptest.NewServer(fin)
	defer hs.Close()
	dir := t.TempDir()
	base, stop := blStartStop(t, dir, func(c *server.Config) { c.Share.AllowHosts = []string{"127.0.0.1/32"} })
	made := mgFill(t, base, hs.URL, fin)
	stop()

	out, err := mgMigrate(t, dir, dsn)
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	src, srcJSON := server.BoltSnapshot(t, dir)
	_, dstJSON := server.PostgresSnapshot(t, dsn)
	server.SameText(t, "the data directory and the database, read through the stores", srcJSON, dstJSON)

	// the printed counts are the tables', and the tables hold the source's records
	printed := mgPrinted(t, out)
	tables := mgTables(t, dsn)
	hashes, records := 0, 0
	for _, k := range src.Keys {
		hashes += len(k.Resolves)
	}
	for _, c := range src.Convs {
		records += len(c.Records)
	}
	var colls, data, vectors, items int
	for _, ds := range src.Datasets {
		for _, c := range ds.Collections {
			colls, data, items = colls+1, data+len(c.Data), items+len(c.Items)
			for _, d := range c.Data {
				vectors += len(d.Vectors)
			}
		}
	}
	want := map[string]int{"auth_keys": len(src.Keys), "auth_key_hashes": hashes, "auth_audit": len(src.Audit),
		"chat_apps": len(src.Apps), "chat_conversations": len(src.Convs), "chat_records": records,
		"billing_bills": len(src.Bills), "billing_records": len(src.Records),
		"shareauth_links": len(src.Links), "shareauth_deliveries": len(src.Deliveries),
		"dataset_datasets": len(src.Datasets), "dataset_collections": colls, "dataset_data": data,
		"dataset_vectors": vectors, "dataset_training": items, "dataset_usage": len(src.TrainingUsage)}
	for table, n := range want {
		if printed[table] != n {
			t.Errorf("migrate printed %d rows for %s; the source has %d", printed[table], table, n)
		}
	}
	for table, n := range printed {
		if !strings.HasPrefix(tables[table], strconv.Itoa(n)+" ") {
			t.Errorf("migrate printed %d rows for %s; it holds %s", n, table, tables[table])
		}
	}
	if len(printed) != len(tables) {
		t.Errorf("migrate printed %d tables; the database has %d", len(printed), len(tables))
	}
	if len(src.Keys) < 6 || len(src.Deliveries) != 1 || len(src.Convs) < 2 || len(src.Bills) != 1 || data != 6 || vectors < 6 {
		t.Fatalf("the data directory holds less than the test made: %d keys, %d callbacks, %d conversations, %d bills, %d data, %d vectors",
			len(src.Keys), len(src.Deliveries), len(src.Convs), len(src.Bills), data, vectors)
	}

	// a second run finds records there and changes nothing
	again, err := mgMigrate(t, dir, dsn)
	if err == nil || !strings.Contains(err.Error(), "already holds records") || !strings.Contains(err.Error(), "-force") {
		t.Fatalf("a second migrate: %v\n%s", err, again)
	}
	if after := mgTables(t, dsn); fmt.Sprint(after) != fmt.Sprint(tables) {
		t.Fatalf("a refused migrate changed the database:\nbefore %v\nafter  %v", tables, after)
	}
	// -force empties it and copies again: the same records, numbered alike
	forced, err := mgMigrate(t, dir, dsn, "-force")
	if err != nil {
		t.Fatalf("migrate -force: %v\n%s", err, forced)
	}
	// (the ledger's totals are spread over slots at random: their rows vary)
	for table, n := range want {
		if mgPrinted(t, forced)[table] != n {
			t.Fatalf("migrate -force printed\n%s\nthe first run\n%s", forced, out)
		}
	}
	_, forcedJSON := server.PostgresSnapshot(t, dsn)
	server.SameText(t, "the database after -force and the data directory", srcJSON, forcedJSON)

	// the server on the data directory and a server on the database answer alike
	quiet := func(c *server.Config) {
		c.Share.AllowHosts = []string{"127.0.0.1/32"}
		c.Auth.FlushInterval = server.Duration(time.Hour) // nothing the calls do is written meanwhile
	}
	// (the first on a copy: what its calls do is written when it stops)
	copyDir := func() string {
		c := t.TempDir()
		if err := os.CopyFS(c, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	onBolt, stopBolt := blStartStop(t, copyDir(), quiet)
	answers := mgAnswers(t, onBolt, made)
	stopBolt()
	fin.host.set(func(h *authHost) { h.down = false })
	onPostgres, stopPostgres := blStartStop(t, t.TempDir(), func(c *server.Config) { quiet(c); c.Storage.DSN = dsn })
	defer stopPostgres()
	answersPG := mgAnswers(t, onPostgres, made)
	server.SameText(t, "the answers of a server on the data directory and of one on the database", answers, answersPG)

	// and goes on from there: the queued callback is delivered, the chat continues
	waitFor(t, "the copied finish callback", 30*time.Second, func() bool { return len(fin.host.callsTo("/shareAuth/finish")) > 0 })
	if status, raw := blDo(t, "POST", onPostgres+"/api/v1/chat/completions", made.appKey,
		`{"chatId":"c1","messages":[{"role":"user","content":"and class 1?"}]}`); status != 200 {
		t.Fatalf("chat on the database: %d %s", status, raw)
	}
	var page struct{ Total int }
	blCall(t, "GET", onPostgres+"/api/core/chat/getPaginationRecords?appId=kb&chatId=c1", blRoot, "", &page)
	if page.Total != 6 {
		t.Fatalf("history c1 on the database after one more turn: %d records, want 6", page.Total)
	}
}

// The command refuses before it touches anything: without a target,
// without a data directory, and on a directory a running server holds.
func TestMigrateRefusals(t *testing.T) {
	t.Setenv("CHATGATE_POSTGRES_DSN", "")
	dir := t.TempDir()
	if _, err := mgMigrate(t, dir, ""); err == nil || !strings.Contains(err.Error(), "-to") {
		t.Fatalf("migrate without a target: %v", err)
	}
	const unused = "postgres://nobody@127.0.0.1:1/none"
	if _, err := mgMigrate(t, dir, unused); err == nil || !strings.Contains(err.Error(), "no data directory") {
		t.Fatalf("migrate of an empty directory: %v", err)
	}
	blStart(t, dir, nil)
	if _, err := mgMigrate(t, dir, unused); !errors.Is(err, boltx.ErrLocked) {
		t.Fatalf("migrate of a directory a server holds: %v", err)
	}
	var out bytes.Buffer
	if err := server.MigrateCommand(context.Background(), server.Config{}, []string{"-h"}, &out); err != nil ||
		!strings.Contains(out.String(), "usage: migrate") || !strings.Contains(out.String(), "-force") {
		t.Fatalf("migrate -h: %v\n%s", err, out.String())
	}
}

// mgAnswers returns a server's answers to the list, detail and search
// calls of what mgFill made, one line each: the key list first, before
// any key but the root key (whose last use, that of the call, it leaves
// out) is used; then the rotated key's old value and the app key are used.
func mgAnswers(t *testing.T, base string, d mgData) string {
	t.Helper()
	var out strings.Builder
	call := func(method, path, key, body string) []byte {
		t.Helper()
		status, raw := blDo(t, method, base+path, key, body)
		if status != 200 {
			t.Fatalf("%s %s: %d %s", method, path, status, raw)
		}
		fmt.Fprintf(&out, "%s %s -> %s\n", method, path, raw)
		return raw
	}
	var keys struct{ Data []map[string]any }
	if _, raw := blDo(t, "GET", base+"/api/support/openapi/list", blRoot, ""); json.Unmarshal(raw, &keys) != nil {
		t.Fatalf("key list: %s", raw)
	}
	for _, k := range keys.Data {
		if k["id"] == "root" {
			delete(k, "lastUsedTime")
		}
	}
	listed, _ := json.Marshal(keys.Data)
	fmt.Fprintf(&out, "keys without the caller's last use: %s\n", listed)
	for _, c := range [][2]string{
		{"/api/support/openapi/audit?limit=1000", blRoot},
		{"/api/core/app/list", blRoot},
		{"/api/core/app/detail?appId=kb", blRoot},
		{"/api/support/outLink/list", blRoot},
		{"/api/core/dataset/list", d.key},
		{"/api/core/dataset/detail?id=" + d.dataset, d.key},
		{"/api/core/dataset/collection/list?datasetId=" + d.dataset, d.key},
		{"/api/core/dataset/collection/detail?id=" + d.coll, d.key},
		{"/api/core/dataset/collection/trainingFailures?collectionId=" + d.coll, d.key},
		{"/api/common/bill/detail?id=" + d.bill, d.key},
		{"/api/support/usage/list?pageSize=2000", d.key},
		{"/api/support/usage/summary", d.key},
	} {
		call("GET", c[0], c[1], "")
	}
	var chats struct {
		Data struct{ List []struct{ ChatID string } }
	}
	if err := json.Unmarshal(call("GET", "/api/core/chat/getHistories?appId=kb", blRoot, ""), &chats); err != nil || len(chats.Data.List) != 2 {
		t.Fatalf("histories: %v %+v", err, chats)
	}
	for _, c := range chats.Data.List {
		call("GET", "/api/core/chat/getPaginationRecords?appId=kb&chatId="+url.QueryEscape(c.ChatID), blRoot, "")
	}
	var data struct {
		Data struct{ List []struct{ ID string } }
	}
	if err := json.Unmarshal(call("GET", "/api/core/dataset/data/list?collectionId="+d.coll+"&pageSize=100", d.key, ""), &data); err != nil {
		t.Fatal(err)
	}
	if len(data.Data.List) == 0 {
		t.Fatalf("the collection lists no data:\n%s", out.String())
	}
	for _, it := range data.Data.List {
		call("GET", "/api/core/dataset/data/detail?id="+it.ID, d.key, "")
	}
	for _, q := range []string{"refund window class 3", "order class 5", "no such thing at all"} {
		call("POST", "/api/core/dataset/searchTest", d.key, fmt.Sprintf(`{"datasetId":%q,"text":%q,"maxResults":100}`, d.dataset, q))
	}
	// the rotated key's old value works in its grace period, and the app key
	call("GET", "/api/core/dataset/list", d.rotatedOld, "")
	call("GET", "/api/core/chat/getHistories?appId=kb", d.appKey, "")
	return server.Settled(t, out.String())
}
