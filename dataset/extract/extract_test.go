package extract_test

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/dataset/extract"
	"github.com/chatgate/chatgate/dataset/extract/extracttest"
)

// fakePDF stands in for pdftext's Reader, whose own tests run PDFium.
type fakePDF struct{ got []byte }

func (f *fakePDF) PDFText(_ context.Context, name string, b []byte) (string, error) {
	f.got = b
	if !bytes.HasPrefix(b, []byte("%PDF-")) {
		return "", extract.Invalid(name, "is not a valid PDF")
	}
	return "pdf text", nil
}

func TestExtractEachFormat(t *testing.T) {
	e := extract.New(extract.Options{PDF: &fakePDF{}})
	for _, c := range []struct {
		name, contentType string
		file              []byte
		want              string
	}{
		{"notes.txt", "text/plain", []byte("line one  \r\nline two\n\n\n\nline three\n"), "line one\nline two\n\nline three"},
		{"bom.txt", "", []byte("\xEF\xBB\xBFhello"), "hello"},
		{"utf16.txt", "", []byte{0xFF, 0xFE, 'h', 0, 'i', 0, 0x2D, 0x4E}, "hi中"},
		{"README.md", "application/octet-stream", []byte("# Title\n\n- item\n"), "# Title\n\n- item"},
		{"page.html", "text/html", []byte(`<!doctype html><html><head><title>T</title><style>p{}</style><script>var x=1</script></head>
<body><h1>Main  title</h1><p>First <b>bold</b>
 paragraph.</p><ul><li>one</li><li>two</li></ul><div hidden>secret</div>
<table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td></tr></table><pre>  keep
   spacing</pre><p>x&amp;y<br>next</p></body></html>`),
			"# Main title\nFirst bold paragraph.\n- one\n- two\nk | v\na | 1\n  keep\n   spacing\nx&y\nnext"},
		{"latin1.htm", "", []byte("<html><head><meta charset=\"iso-8859-1\"></head><body><p>caf\xe9</p></body></html>"), "café"},
		{"table.csv", "text/csv", []byte("question,answer\nWhat is chatgate?,A gateway.\n\"Multi, line\",\"two\nlines\"\n,\n"),
			"question: What is chatgate?\nanswer: A gateway.\n\nquestion: Multi, line\nanswer: two\nlines"},
		{"report.docx", "", extracttest.DOCX(t, "Hello docx world", "Second paragraph", "cell a|cell b"),
			"Hello docx world\nSecond paragraph\ncell a | cell b"},
		{"scan.pdf", "application/pdf", []byte("%PDF-1.4 ..."), "pdf text"},
		{"noext", "text/markdown; charset=utf-8", []byte("by content type"), "by content type"},
	} {
		got, err := e.Extract(context.Background(), c.name, c.contentType, bytes.NewReader(c.file))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s: got\n%q\nwant\n%q", c.name, got, c.want)
		}
	}
}

func TestExtractRefusesFilesAtFault(t *testing.T) {
	e := extract.New(extract.Options{PDF: &fakePDF{}})
	noPDF := extract.New(extract.Options{})
	for _, c := range []struct {
		e        *extract.Extractor
		name     string
		file     []byte
		sentinel error
		says     string
	}{
		{e, "tool.exe", []byte("MZ"), extract.ErrUnsupported, `"tool.exe" is not a supported type`},
		{e, "sheet.xlsx", []byte("PK"), extract.ErrUnsupported, "not a supported type"},
		{e, "noext", []byte("x"), extract.ErrUnsupported, "not a supported type"},
		{noPDF, "a.pdf", []byte("%PDF-1.4"), extract.ErrUnsupported, "send txt, md, html, csv, docx"},
		{e, "binary.txt", []byte("ELF\x00\x01\x02\x03"), extract.ErrInvalid, "binary data"},
		{e, "gbk.txt", []byte{0xC4, 0xE3, 0xBA, 0xC3, 0xff}, extract.ErrInvalid, "not UTF-8"},
		{e, "binary.csv", []byte("a,b\n\x00\x00"), extract.ErrInvalid, "binary data"},
		{e, "corrupt.docx", []byte("PK\x03\x04 not really a zip"), extract.ErrInvalid, "not a valid DOCX"},
		{e, "nodoc.docx", extracttest.Zip(t, map[string]string{"word/other.xml": "<x/>"}), extract.ErrInvalid, "no word/document.xml"},
		{e, "badxml.docx", extracttest.Zip(t, map[string]string{"word/document.xml": "<w:document><w:body>"}), extract.ErrInvalid, "not a valid DOCX"},
		{e, "fake.pdf", []byte("not a pdf"), extract.ErrInvalid, "not a valid PDF"},
	} {
		_, err := c.e.Extract(context.Background(), c.name, "", bytes.NewReader(c.file))
		if !errors.Is(err, c.sentinel) || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), `"file"`) {
			t.Errorf("%s: %v; want %v naming the file and saying %q", c.name, err, c.sentinel, c.says)
		}
	}
	if _, err := e.Extract(context.Background(), "bad.csv", "", strings.NewReader("a,b\n\"x\"y,z\n")); err != nil {
		t.Errorf("a stray quote, as spreadsheets write, is read: %v", err)
	}
}

func TestEmptyFilesHaveNoText(t *testing.T) {
	e := extract.New(extract.Options{})
	for name, file := range map[string][]byte{
		"empty.txt":  nil,
		"blank.md":   []byte(" \n\t\n"),
		"empty.html": []byte("<html><head><script>x()</script></head><body> </body></html>"),
		"empty.csv":  nil,
		"empty.docx": extracttest.DOCX(t),
	} {
		got, err := e.Extract(context.Background(), name, "", bytes.NewReader(file))
		if err != nil || got != "" {
			t.Errorf("%s: %q, %v; want no text and no error (the caller refuses it)", name, got, err)
		}
	}
}

// A program that imports dataset alone links no extractor, and one that
// imports extract links no PDF engine.
func TestExtractorsAreNotLinkedByDataset(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	for pkg, banned := range map[string][]string{
		"github.com/chatgate/chatgate/dataset": {"github.com/chatgate/chatgate/dataset/extract",
			"golang.org/x/net/html", "github.com/klippa-app/go-pdfium", "github.com/tetratelabs/wazero", "codeberg.org/go-pdf/fpdf"},
		"github.com/chatgate/chatgate/dataset/extract": {"github.com/klippa-app/go-pdfium", "github.com/tetratelabs/wazero",
			"codeberg.org/go-pdf/fpdf"},
	} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range banned {
				if strings.HasPrefix(dep, b) {
					t.Errorf("%s links %s", pkg, dep)
				}
			}
		}
	}
}
