package dataset_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/dataset"
)

// fileEnv serves a dataset Handler with the given file extractor, and a
// dataset to upload into.
type fileEnv struct {
	url, key, datasetID string
	svc                 *dataset.Service
}

func newFileEnv(t *testing.T, files dataset.FileExtractor) *fileEnv {
	t.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	store := auth.NewMemoryStore()
	authn := auth.NewAuthenticator(store, auth.Options{Logger: quiet})
	t.Cleanup(func() { _ = authn.Close(ctx) })
	_, key, err := auth.NewManager(store, authn).Create(ctx, auth.KeySpec{Name: "w", TeamID: "team-a"})
	if err != nil {
		t.Fatal(err)
	}
	svc := newService(t, dataset.Options{})
	d, err := svc.CreateDataset(ctx, "team-a", "kb", "")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	dataset.NewHandler(svc, dataset.HandlerOptions{Logger: quiet, Files: files}).Register(mux, authn)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fileEnv{url: srv.URL, key: key, datasetID: d.ID, svc: svc}
}

func (e *fileEnv) upload(t *testing.T, filename string, file []byte) (int, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("file", filename)
	_, _ = w.Write(file)
	_ = mw.WriteField("data", `{"datasetId":"`+e.datasetID+`","trainingType":"chunk"}`)
	_ = mw.Close()
	req, _ := http.NewRequest("POST", e.url+"/api/core/dataset/collection/create/localFile", &buf)
	req.Header.Set("Authorization", "Bearer "+e.key)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct{ Message string }
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &env)
	return resp.StatusCode, env.Message
}

// extractorFunc is a FileExtractor from a function.
type extractorFunc func(name string, b []byte) (string, error)

func (f extractorFunc) Extract(_ context.Context, name, _ string, r io.Reader) (string, error) {
	b, _ := io.ReadAll(r)
	return f(name, b)
}

func TestLocalFileWithoutExtractor(t *testing.T) {
	e := newFileEnv(t, nil)
	if status, msg := e.upload(t, "a.txt", []byte("text")); status != 400 || !strings.Contains(msg, "reads no uploaded files") {
		t.Errorf("no extractor: %d %q", status, msg)
	}
}

// The extractor's refusals answer as they are; its own failures are a 500
// that says nothing of them; both leave nothing.
func TestLocalFileExtractorErrors(t *testing.T) {
	refused := apierror.New(http.StatusUnprocessableEntity, "odd_file", "that file is odd")
	e := newFileEnv(t, extractorFunc(func(name string, b []byte) (string, error) {
		switch name {
		case "odd.txt":
			return "", refused
		case "crash.txt":
			return "", errors.New("disk on fire")
		}
		return string(b), nil
	}))
	if status, msg := e.upload(t, "odd.txt", []byte("x")); status != 422 || msg != "that file is odd" {
		t.Errorf("refused: %d %q", status, msg)
	}
	if status, msg := e.upload(t, "crash.txt", []byte("x")); status != 500 || strings.Contains(msg, "fire") {
		t.Errorf("failed: %d %q", status, msg)
	}
	cs, err := e.svc.Collections(context.Background(), "team-a", e.datasetID)
	if err != nil || len(cs) != 0 {
		t.Fatalf("left behind: %d collections, %v", len(cs), err)
	}
	// The route passes the file's bytes, and names the collection after it.
	if status, msg := e.upload(t, "ok.txt", []byte("plain words")); status != 200 {
		t.Fatalf("ok: %d %q", status, msg)
	}
	// A client on Windows may send the whole path.
	if status, msg := e.upload(t, `C:\Users\me\Desktop\测试\win.txt`, []byte("more words")); status != 200 {
		t.Fatalf("a Windows path: %d %q", status, msg)
	}
	cs, _ = e.svc.Collections(context.Background(), "team-a", e.datasetID)
	if len(cs) != 2 || cs[0].Name != "ok.txt" || cs[0].Type != dataset.CollectionFile || cs[1].Name != "win.txt" {
		t.Errorf("collections %+v %+v", cs[0], cs[len(cs)-1])
	}
}
