package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// liSizes are the lengths of the one-word inputs, in bytes.
var liSizes = []int{16 << 10, 64 << 10, 128 << 10, 1 << 20}

// liWord is a word of n random lower-case letters: one piece for the
// pre-tokenizer, the input whose token count used to take quadratic time.
func liWord(n int) string {
	rng := rand.New(rand.NewSource(int64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + rng.Intn(26))
	}
	return string(b)
}

// liCPU is the process's user and system CPU time so far.
func liCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// liQuiet waits until the process has been idle for a while: the
// background work earlier requests caused (training, the text index's
// merges) must not be counted against the next one.
func liQuiet(tb testing.TB) {
	tb.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		c0 := liCPU(tb)
		time.Sleep(50 * time.Millisecond)
		if liCPU(tb)-c0 < time.Millisecond {
			return
		}
	}
}

// liDo sends one request and returns its status and body.
func liDo(tb testing.TB, method, url, key string, body []byte) (int, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, raw
}

// liData calls a FastGPT-envelope route that must succeed and decodes
// its data into out.
func liData(tb testing.TB, method, url, key string, body any, out any) {
	tb.Helper()
	raw, _ := json.Marshal(body)
	if body == nil {
		raw = nil
	}
	status, resp := liDo(tb, method, url, key, raw)
	var env struct {
		Code int             `json:"code"`
		Data json.RawMessage `json:"data"`
	}
	if status != 200 || json.Unmarshal(resp, &env) != nil || env.Code != 200 {
		tb.Fatalf("%s %s: %d %.300s", method, url, status, resp)
	}
	if out != nil {
		if err := json.Unmarshal(env.Data, out); err != nil {
			tb.Fatalf("%s %s: %v in %.300s", method, url, err, resp)
		}
	}
}

// liEnv is a reference server with what the routes need: a dataset key,
// a dataset with a collection holding one trained item, and a keyless
// share link to the default app.
type liEnv struct {
	base, key, dataset, collection, dataID, shareID string
}

func liStart(tb testing.TB) *liEnv {
	tb.Helper()
	base, _ := sdkServerTB(tb, nil)
	e := &liEnv{base: base, key: sdkKeyTB(tb, base, map[string]any{"name": "kb"})}
	liData(tb, "POST", base+"/api/core/dataset/create", e.key, map[string]any{"name": "kb"}, &e.dataset)
	liData(tb, "POST", base+"/api/core/dataset/collection/create", e.key,
		map[string]any{"datasetId": e.dataset, "name": "manual"}, &e.collection)
	liData(tb, "POST", base+"/api/core/dataset/data/pushData", e.key,
		map[string]any{"collectionId": e.collection, "data": []map[string]string{{"q": "what is chatgate", "a": "a gateway"}}}, nil)
	e.drain(tb, e.collection)
	var page struct {
		List []struct {
			ID string `json:"id"`
		} `json:"list"`
	}
	liData(tb, "GET", base+"/api/core/dataset/data/list?collectionId="+e.collection, e.key, nil, &page)
	if len(page.List) != 1 {
		tb.Fatalf("data list: %+v", page)
	}
	e.dataID = page.List[0].ID
	var link struct {
		ShareID string `json:"shareId"`
	}
	liData(tb, "POST", base+"/api/support/outLink/create", sdkAdmin, map[string]any{"appId": "main", "name": "public"}, &link)
	e.shareID = link.ShareID
	// One short chat: the token counter is built when the server starts,
	// and the first count waits for it; none of the measured ones should.
	if status, body := liRoutes[0].send(tb, e, "hello", 0); status != 200 {
		tb.Fatalf("share-link chat: %d %.300s", status, body)
	}
	return e
}

// drain waits until a collection's training queue is empty.
func (e *liEnv) drain(tb testing.TB, collection string) {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		var d struct {
			TrainingAmount int `json:"trainingAmount"`
			FailedAmount   int `json:"failedAmount"`
		}
		liData(tb, "GET", e.base+"/api/core/dataset/collection/detail?id="+collection, e.key, nil, &d)
		if d.TrainingAmount == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("training of %s: %+v", collection, d)
		}
	}
}

// liRoute is one route fed a one-word input: the request, and the status
// it answers with (some refuse inputs over their token limits, after
// counting them: that is work too, and measured as it is).
type liRoute struct {
	name   string
	status int
	send   func(tb testing.TB, e *liEnv, word string, i int) (int, []byte)
}

var liRoutes = []liRoute{
	{"chat-share", 200, func(tb testing.TB, e *liEnv, word string, _ int) (int, []byte) {
		body, _ := json.Marshal(map[string]any{"shareId": e.shareID, "stream": false,
			"messages": []map[string]string{{"role": "user", "content": word}}})
		return liDo(tb, "POST", e.base+"/api/v1/chat/completions", "", body)
	}},
	{"pushData", 200, func(tb testing.TB, e *liEnv, word string, _ int) (int, []byte) {
		body, _ := json.Marshal(map[string]any{"collectionId": e.collection, "data": []map[string]string{{"q": word}}})
		return liDo(tb, "POST", e.base+"/api/core/dataset/data/pushData", e.key, body)
	}},
	{"searchTest", 200, func(tb testing.TB, e *liEnv, word string, _ int) (int, []byte) {
		body, _ := json.Marshal(map[string]any{"datasetId": e.dataset, "text": word, "maxResults": 10})
		return liDo(tb, "POST", e.base+"/api/core/dataset/searchTest", e.key, body)
	}},
	{"searchTest-mixed", 200, func(tb testing.TB, e *liEnv, word string, _ int) (int, []byte) {
		body, _ := json.Marshal(map[string]any{"datasetId": e.dataset, "text": word, "searchMode": "mixedRecall", "maxResults": 10})
		return liDo(tb, "POST", e.base+"/api/core/dataset/searchTest", e.key, body)
	}},
	{"data-update", 400, func(tb testing.TB, e *liEnv, word string, _ int) (int, []byte) {
		body, _ := json.Marshal(map[string]any{"id": e.dataID, "q": word})
		return liDo(tb, "PUT", e.base+"/api/core/dataset/data/update", e.key, body)
	}},
	{"create-text", 200, func(tb testing.TB, e *liEnv, word string, i int) (int, []byte) {
		body, _ := json.Marshal(map[string]any{"datasetId": e.dataset, "name": fmt.Sprintf("text %d", i), "text": word})
		return liDo(tb, "POST", e.base+"/api/core/dataset/collection/create/text", e.key, body)
	}},
}

// BenchmarkLongInput sends each route a one-word input of 16, 64, 128 KiB
// and 1 MiB through the reference server on loopback and reports the
// process CPU time per request (getrusage, user+system: the server's
// work, plus the client's, which is small next to it) and the wall time.
// After create/text the collection's training is waited for, outside the
// measured request, and its CPU reported apart (train-cpu-ms/op): it is
// work the request causes, but after its answer. Before each request the
// process is let go idle, so that no earlier request's background work is
// counted.
func BenchmarkLongInput(b *testing.B) {
	e := liStart(b)
	for _, r := range liRoutes {
		for _, size := range liSizes {
			word := liWord(size)
			b.Run(fmt.Sprintf("%s/%dKiB", r.name, size>>10), func(b *testing.B) {
				var cpu, wall, train time.Duration
				i := 0
				for b.Loop() {
					i++
					b.StopTimer()
					liQuiet(b)
					b.StartTimer()
					c0, t0 := liCPU(b), time.Now()
					status, body := r.send(b, e, word, i)
					wall += time.Since(t0)
					cpu += liCPU(b) - c0
					if status != r.status {
						b.Fatalf("status %d, want %d: %.300s", status, r.status, body)
					}
					if r.name == "create-text" {
						b.StopTimer()
						var res struct {
							CollectionID string `json:"collectionId"`
						}
						var env struct{ Data json.RawMessage }
						if json.Unmarshal(body, &env) != nil || json.Unmarshal(env.Data, &res) != nil || res.CollectionID == "" {
							b.Fatalf("create/text: %.300s", body)
						}
						c1 := liCPU(b)
						e.drain(b, res.CollectionID)
						train += liCPU(b) - c1
						b.StartTimer()
					}
				}
				b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
				b.ReportMetric(float64(wall.Microseconds())/1000/float64(b.N), "wall-ms/op")
				if train > 0 {
					b.ReportMetric(float64(train.Microseconds())/1000/float64(b.N), "train-cpu-ms/op")
				}
			})
		}
	}
}
