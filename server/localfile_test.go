package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/extract"
	"github.com/chatgate/chatgate/dataset/extract/extracttest"
	"github.com/chatgate/chatgate/dataset/extract/pdftext"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
	"github.com/chatgate/chatgate/server"
)

// FastGPT's collection/create/localFile, sent as its document's curl
// sends it: --form 'file=@"...index.html"' --form 'data="{...}"', on the
// embedded default and on Postgres.

// lfPart is one part of a localFile form.
type lfPart struct {
	field, filename, contentType string
	body                         []byte
}

// lfFile is the file part as curl writes it for -F file=@name: the
// file's name, and the type curl guesses from its extension.
func lfFile(name string, body []byte) lfPart {
	ct := "application/octet-stream"
	switch {
	case strings.HasSuffix(name, ".html"):
		ct = "text/html"
	case strings.HasSuffix(name, ".txt"):
		ct = "text/plain"
	case strings.HasSuffix(name, ".pdf"):
		ct = "application/pdf"
	}
	return lfPart{field: "file", filename: name, contentType: ct, body: body}
}

// lfData is the data part as curl writes -F 'data="{...}"': no filename,
// no content type, the quotes taken off.
func lfData(json string) lfPart { return lfPart{field: "data", body: []byte(json)} }

// lfDocData is the document's data, for a dataset.
func lfDocData(datasetID string) lfPart {
	return lfData(`{"datasetId":"` + datasetID + `","parentId":null,"trainingType":"chunk","chunkSize":512,"chunkSplitter":"","qaPrompt":"","metadata":{}}`)
}

// lfPost sends a multipart form to localFile and returns its envelope.
func lfPost(t *testing.T, base, key string, parts ...lfPart) blEnvelope {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		cd := fmt.Sprintf(`form-data; name="%s"`, p.field)
		if p.filename != "" {
			cd += fmt.Sprintf(`; filename="%s"`, p.filename)
		}
		h.Set("Content-Disposition", cd)
		if p.contentType != "" {
			h.Set("Content-Type", p.contentType)
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(p.body)
	}
	_ = mw.Close()
	return lfSend(t, base, key, mw.FormDataContentType(), &buf)
}

func lfSend(t *testing.T, base, key, contentType string, body io.Reader) blEnvelope {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/api/core/dataset/collection/create/localFile", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", contentType)
	resp, err := blClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env blEnvelope
	if err := json.Unmarshal(raw, &env); err != nil || env.Code != resp.StatusCode {
		t.Fatalf("localFile: HTTP %d, not an envelope with that code: %s", resp.StatusCode, raw)
	}
	return env
}

// lfTrained waits until a collection's chunks are trained and returns
// their q's, joined.
func lfTrained(t *testing.T, base, key, collectionID string) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var c struct{ TrainingAmount, DataAmount int }
		blCall(t, "GET", base+"/api/core/dataset/collection/detail?id="+collectionID, key, "", &c)
		if c.TrainingAmount == 0 && c.DataAmount > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("collection %s not trained: %+v", collectionID, c)
		}
	}
	var page struct {
		List []struct{ Q, SourceName, Source string }
	}
	blCall(t, "POST", base+"/api/core/dataset/data/v2/list", key, `{"offset":0,"pageSize":30,"collectionId":"`+collectionID+`","searchText":""}`, &page)
	var qs []string
	for _, d := range page.List {
		qs = append(qs, d.Q)
	}
	return strings.Join(qs, "\n")
}

// lfFiles is the servers' file extractor, the default's parts, shared:
// each server's own would compile PDFium again, seconds (a minute under
// -race, where it runs interpreted instead) each.
var lfFiles = sync.OnceValue(func() dataset.FileExtractor {
	return extract.New(extract.Options{PDF: pdftext.New(pdftext.Options{Interpreter: raceEnabled})})
})

// lfEach is dvEach with the shared extractor and the config changed by
// mutate.
func lfEach(t *testing.T, mutate func(*server.Config), fn func(t *testing.T, base string)) {
	config := func(c *server.Config) {
		c.Dataset.Files = lfFiles()
		if mutate != nil {
			mutate(c)
		}
	}
	t.Run("embedded", func(t *testing.T) {
		fn(t, blStart(t, t.TempDir(), config))
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.DSN(t)
		fn(t, blStart(t, t.TempDir(), func(c *server.Config) {
			c.Storage.DSN = dsn
			config(c)
		}))
	})
}

func TestDocCollectionCreateLocalFile(t *testing.T) {
	lfEach(t, nil, func(t *testing.T, base string) {
		key := blRoot
		ds := dvDataset(t, base, key, "files")
		for _, c := range []struct {
			file     lfPart
			name     string // the collection's
			contains []string
			absent   string
		}{
			{lfFile("notes.txt", []byte("Chatgate keeps keys.\n\nIt answers in FastGPT's envelope.\n")), "notes.txt",
				[]string{"Chatgate keeps keys.", "FastGPT's envelope"}, ""},
			{lfFile("guide.md", []byte("# Guide\n\nInstall with **go install**.\n")), "guide.md", []string{"# Guide", "go install"}, ""},
			{lfFile("index.html", []byte(`<html><head><title>Quick start</title><script>tracking()</script></head>
<body><nav><a href="/">Home</a></nav><h2>Quick start</h2><p>Run the <code>chatgate</code> binary.</p></body></html>`)),
				"index.html", []string{"## Quick start", "Run the chatgate binary."}, "tracking"},
			{lfFile("faq.csv", []byte("question,answer\nWhat is chatgate?,A gateway.\nWho runs it?,You do.\n")), "faq.csv",
				[]string{"question: What is chatgate?\nanswer: A gateway.", "question: Who runs it?"}, ""},
			{lfFile("report.docx", extracttest.DOCX(t, "Quarterly report", "Revenue grew by ten percent.")), "report.docx",
				[]string{"Quarterly report\nRevenue grew by ten percent."}, ""},
			{lfFile("manual.pdf", extracttest.PDF(t, "Press the green button to start.", "Page two explains stopping.")), "manual.pdf",
				[]string{"Press the green button to start.", "Page two explains stopping."}, ""},
			// FastGPT's document asks for a percent-encoded name when it
			// is not ASCII.
			{lfFile("%E6%B5%8B%E8%AF%95.txt", []byte("中文内容")), "测试.txt", []string{"中文内容"}, ""},
		} {
			env := lfPost(t, base, key, c.file, lfDocData(ds))
			if env.Code != 200 {
				t.Errorf("%s: %d %s %s", c.file.filename, env.Code, env.StatusText, env.Message)
				continue
			}
			var res struct {
				CollectionID string `json:"collectionId"`
				Results      struct {
					InsertLen int             `json:"insertLen"`
					OverToken []any           `json:"overToken"`
					Repeat    []any           `json:"repeat"`
					Error     json.RawMessage `json:"error"`
				} `json:"results"`
			}
			if err := json.Unmarshal(env.Data, &res); err != nil || res.CollectionID == "" || res.Results.InsertLen < 1 ||
				res.Results.OverToken == nil || res.Results.Repeat == nil {
				t.Errorf("%s: data %s", c.file.filename, env.Data)
				continue
			}
			var detail struct{ Name, Type, DatasetID, TrainingType string }
			blCall(t, "GET", base+"/api/core/dataset/collection/detail?id="+res.CollectionID, key, "", &detail)
			if detail.Name != c.name || detail.Type != "file" || detail.DatasetID != ds {
				t.Errorf("%s: detail %+v; want name %q, type file", c.file.filename, detail, c.name)
			}
			text := lfTrained(t, base, key, res.CollectionID)
			for _, want := range c.contains {
				if !strings.Contains(text, want) {
					t.Errorf("%s: trained text %q lacks %q", c.file.filename, text, want)
				}
			}
			if c.absent != "" && strings.Contains(text, c.absent) {
				t.Errorf("%s: trained text %q holds %q", c.file.filename, text, c.absent)
			}
		}
		// The collections list as FastGPT's listV2 shows them.
		var page struct {
			List []struct {
				Name, Type, TrainingType string
			}
			Total int
		}
		blCall(t, "POST", base+"/api/core/dataset/collection/listV2", key, `{"offset":0,"pageSize":30,"datasetId":"`+ds+`","parentId":null,"searchText":"manual"}`, &page)
		if page.Total != 1 || page.List[0].Name != "manual.pdf" || page.List[0].Type != "file" || page.List[0].TrainingType != "chunk" {
			t.Errorf("listV2: %+v", page)
		}
		// A name in data names the collection instead of the file's; the
		// search finds the file's text.
		env := lfPost(t, base, key, lfFile("x.txt", []byte("The lighthouse keeper logs every ship.")),
			lfData(`{"datasetId":"`+ds+`","name":"Ship log","trainingType":"chunk"}`))
		var res struct{ CollectionID string }
		_ = json.Unmarshal(env.Data, &res)
		var detail struct{ Name string }
		if env.Code != 200 {
			t.Fatalf("named: %d %s", env.Code, env.Message)
		}
		blCall(t, "GET", base+"/api/core/dataset/collection/detail?id="+res.CollectionID, key, "", &detail)
		if detail.Name != "Ship log" {
			t.Errorf("named collection: %q", detail.Name)
		}
		lfTrained(t, base, key, res.CollectionID)
		var hits []struct{ Q, SourceName string }
		blCall(t, "POST", base+"/api/core/dataset/searchTest", key, `{"datasetId":"`+ds+`","text":"lighthouse keeper ship","searchMode":"embedding"}`, &hits)
		if len(hits) == 0 || !strings.Contains(hits[0].Q, "lighthouse") {
			t.Errorf("searchTest: %+v", hits)
		}
	})
}

// Each bad upload answers 400 naming the problem, and leaves no
// collection (and so no training item) behind.
func TestLocalFileRefusalsLeaveNothing(t *testing.T) {
	lfEach(t, func(c *server.Config) { c.Dataset.MaxFileBytes = 2048 }, func(t *testing.T, base string) {
		key := blRoot
		ds := dvDataset(t, base, key, "files")
		other := dvOtherTeam(t, base)
		theirs := dvDataset(t, base, other, "theirs")
		list := base + "/api/core/dataset/collection/list?datasetId=" + ds
		before := dvSnap(t, list, key)
		good := lfFile("ok.txt", []byte("fine text"))
		pdf := extracttest.PDF(t, "valid")
		for _, c := range []struct {
			name   string
			parts  []lfPart
			status int
			says   []string
		}{
			{"unknown extension", []lfPart{lfFile("tool.exe", []byte("MZ\x90\x00")), lfDocData(ds)}, 400, []string{`"file"`, `"tool.exe" is not a supported type`}},
			{"corrupt docx", []lfPart{lfFile("bad.docx", []byte("PK\x03\x04garbage")), lfDocData(ds)}, 400, []string{`"bad.docx" is not a valid DOCX`}},
			{"corrupt pdf", []lfPart{lfFile("bad.pdf", pdf[:len(pdf)/3]), lfDocData(ds)}, 400, []string{`"bad.pdf" is not a valid PDF`}},
			{"binary named .txt", []lfPart{lfFile("image.txt", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")), lfDocData(ds)}, 400, []string{`"image.txt"`, "binary data"}},
			{"empty text", []lfPart{lfFile("empty.txt", []byte(" \n\n ")), lfDocData(ds)}, 400, []string{`"file"`, `"empty.txt" holds no text`}},
			{"html without text", []lfPart{lfFile("blank.html", []byte("<html><script>x()</script></html>")), lfDocData(ds)}, 400, []string{"holds no text"}},
			{"missing file", []lfPart{lfDocData(ds)}, 400, []string{`"file"`, "is required"}},
			{"file without a filename", []lfPart{{field: "file", body: []byte("text")}, lfDocData(ds)}, 400, []string{`"file"`, "no filename"}},
			{"missing data", []lfPart{good}, 400, []string{`"data"`, "is required"}},
			{"data not JSON", []lfPart{good, lfData(`{datasetId:` + ds + `}`)}, 400, []string{`"data"`, "JSON"}},
			{"data empty", []lfPart{good, lfData("")}, 400, []string{`"data"`, "empty"}},
			{"data with an unknown field", []lfPart{good, lfData(`{"datasetId":"` + ds + `","trainingType":"chunk","colour":"red"}`)}, 400, []string{`"data.colour"`, "unknown field"}},
			{"data with a wrong type", []lfPart{good, lfData(`{"datasetId":"` + ds + `","chunkSize":"big"}`)}, 400, []string{`"data.chunkSize"`, "integer"}},
			{"data with a text", []lfPart{good, lfData(`{"datasetId":"` + ds + `","trainingType":"chunk","text":"other"}`)}, 400, []string{`"text"`, "the file's"}},
			{"data without datasetId", []lfPart{good, lfData(`{"trainingType":"chunk"}`)}, 400, []string{`"datasetId"`}},
			{"bad trainingType", []lfPart{good, lfData(`{"datasetId":"` + ds + `","trainingType":"magic"}`)}, 400, []string{`"trainingType"`}},
			{"autoIndexes", []lfPart{good, lfData(`{"datasetId":"` + ds + `","trainingType":"chunk","autoIndexes":true}`)}, 400, []string{`"autoIndexes"`}},
			{"chunkSize out of range", []lfPart{good, lfData(`{"datasetId":"` + ds + `","trainingType":"chunk","chunkSize":1}`)}, 400, []string{`"chunkSize"`}},
			{"two files", []lfPart{good, good, lfDocData(ds)}, 400, []string{`"file"`, "twice"}},
			{"an unknown part", []lfPart{good, lfDocData(ds), {field: "extra", body: []byte("x")}}, 400, []string{`"extra"`, "unknown field"}},
			{"too large", []lfPart{lfFile("big.txt", bytes.Repeat([]byte("word "), 2048/5+1)), lfDocData(ds)}, 400, []string{`"file"`, "larger than the 2048 bytes"}},
			{"another team's dataset", []lfPart{good, lfDocData(theirs)}, 404, []string{"dataset not found"}},
		} {
			env := lfPost(t, base, key, c.parts...)
			ok := env.Code == c.status
			for _, s := range c.says {
				ok = ok && strings.Contains(env.Message, s)
			}
			if !ok {
				t.Errorf("%s: %d %s %q; want %d saying %q", c.name, env.Code, env.StatusText, env.Message, c.status, c.says)
			}
		}
		env := lfSend(t, base, key, "application/json", strings.NewReader(`{"datasetId":"`+ds+`"}`))
		if env.Code != 400 || !strings.Contains(env.Message, "multipart/form-data") {
			t.Errorf("a JSON body: %d %q", env.Code, env.Message)
		}
		if after := dvSnap(t, list, key); after != before {
			t.Errorf("refused uploads left collections behind:\nbefore %s\nafter  %s", before, after)
		}
		if theirsAfter := dvSnap(t, base+"/api/core/dataset/collection/list?datasetId="+theirs, other); theirsAfter != `{"list":[],"total":0}` {
			t.Errorf("the other team's dataset changed: %s", theirsAfter)
		}
	})
}

// lfTrickle sends body in pieces, pause apart, as a slow link does.
func lfTrickle(body []byte, pieces int, pause time.Duration) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		n := (len(body) + pieces - 1) / pieces
		for len(body) > 0 {
			k := min(n, len(body))
			if _, err := pw.Write(body[:k]); err != nil {
				return
			}
			body = body[k:]
			<-time.After(pause) // a real socket's deadline: synctest's clock does not move it
		}
		_ = pw.Close()
	}()
	return pr
}

// An upload is read under dataset.upload_read_timeout, every other body
// under server.body_read_timeout: a file that takes longer than the
// latter to arrive is still taken.
func TestLocalFileHasItsOwnReadDeadline(t *testing.T) {
	base := blStart(t, t.TempDir(), func(c *server.Config) {
		c.Server.BodyReadTimeout = server.Duration(400 * time.Millisecond)
		c.Dataset.UploadReadTimeout = server.Duration(20 * time.Second)
	})
	ds := dvDataset(t, base, blRoot, "slow")
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("file", "slow.txt")
	_, _ = w.Write(bytes.Repeat([]byte("A slow but steady upload. "), 200))
	_ = mw.WriteField("data", `{"datasetId":"`+ds+`","trainingType":"chunk"}`)
	_ = mw.Close()
	env := lfSend(t, base, blRoot, mw.FormDataContentType(), lfTrickle(buf.Bytes(), 6, 200*time.Millisecond))
	if env.Code != 200 {
		t.Errorf("a slow upload: %d %s", env.Code, env.Message)
	}
	// The same pace on another route runs out of time.
	req, _ := http.NewRequest("POST", base+"/api/core/dataset/collection/create/text",
		lfTrickle([]byte(`{"datasetId":"`+ds+`","name":"t","text":"`+strings.Repeat("slow text ", 100)+`","trainingType":"chunk"}`), 6, 200*time.Millisecond))
	req.Header.Set("Authorization", "Bearer "+blRoot)
	req.Header.Set("Content-Type", "application/json")
	resp, err := blClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("a slow JSON body: %d, want 408", resp.StatusCode)
	}
}
