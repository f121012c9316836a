package pdftext_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/chatgate/chatgate/dataset/extract"
	"github.com/chatgate/chatgate/dataset/extract/extracttest"
	"github.com/chatgate/chatgate/dataset/extract/pdftext"
)

// shared is the Reader of the tests that do not close theirs: each new
// Reader compiles PDFium again, some seconds.
var shared = sync.OnceValue(func() *pdftext.Reader {
	return pdftext.New(pdftext.Options{MaxPages: 3, CompilationCache: cache, Interpreter: raceEnabled})
})

// cache keeps the compiled module for every Reader of the tests.
var cache = wazero.NewCompilationCache()

func TestReadsPagesInOrder(t *testing.T) {
	r := shared()
	pdf := extracttest.PDF(t, "Hello chatgate PDF\nsecond line", "", "Third page here")
	got, err := r.PDFText(context.Background(), "doc.pdf", pdf)
	if err != nil {
		t.Fatal(err)
	}
	want := "Hello chatgate PDF\r\nsecond line\n\nThird page here"
	if strings.ReplaceAll(got, "\r\n", "\n") != strings.ReplaceAll(want, "\r\n", "\n") {
		t.Errorf("text %q, want %q", got, want)
	}
	// Through the Extractor, as the server wires it: lines tidied.
	e := extract.New(extract.Options{PDF: r})
	got, err = e.Extract(context.Background(), "doc.pdf", "application/pdf", bytes.NewReader(pdf))
	if err != nil || got != "Hello chatgate PDF\nsecond line\n\nThird page here" {
		t.Errorf("Extract = %q, %v", got, err)
	}
}

func TestRefusesWhatIsNotAPDF(t *testing.T) {
	r := shared()
	good := extracttest.PDF(t, "Some text")
	for name, file := range map[string][]byte{
		"text.pdf":      []byte("just some text, not a PDF"),
		"empty.pdf":     nil,
		"truncated.pdf": good[:len(good)/3],
		"zip.pdf":       extracttest.DOCX(t, "a docx named .pdf"),
		"locked.pdf":    extracttest.EncryptedPDF(t, "secret", "hidden text"),
	} {
		_, err := r.PDFText(context.Background(), name, file)
		if !errors.Is(err, extract.ErrInvalid) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v; want ErrInvalid naming the file", name, err)
		}
	}
	if _, err := r.PDFText(context.Background(), "locked.pdf", extracttest.EncryptedPDF(t, "secret", "x")); err == nil ||
		!strings.Contains(err.Error(), "encrypted") {
		t.Errorf("an encrypted PDF: %v", err)
	}
	// A bad PDF leaves nothing behind that breaks the next read.
	if got, err := r.PDFText(context.Background(), "good.pdf", good); err != nil || got != "Some text" {
		t.Errorf("after bad files: %q, %v", got, err)
	}
}

func TestConcurrentReadsAndClose(t *testing.T) {
	r := pdftext.New(pdftext.Options{Concurrency: 2, CompilationCache: cache, Interpreter: raceEnabled})
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			want := strings.Repeat("x", i+1) + " page"
			got, err := r.PDFText(context.Background(), "p.pdf", extracttest.PDF(t, want))
			if err != nil || got != want {
				t.Errorf("read %d: %q, %v", i, got, err)
			}
		})
	}
	wg.Wait()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PDFText(context.Background(), "p.pdf", extracttest.PDF(t, "late")); err == nil {
		t.Error("a read after Close succeeded")
	}
}

func TestWaitingReadFollowsItsContext(t *testing.T) {
	r := shared()
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	if _, err := r.PDFText(ctx, "p.pdf", extracttest.PDF(t, "x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("an ended context: %v", err)
	}
	_, err := r.PDFText(context.Background(), "long.pdf", extracttest.PDF(t, "a", "b", "c", "d"))
	if !errors.Is(err, extract.ErrInvalid) || !strings.Contains(err.Error(), "4 pages") {
		t.Errorf("over MaxPages: %v", err)
	}
}

// BenchmarkPDFText reads a 20-page PDF: an instance made, the document
// opened, every page's text read, the instance dropped.
func BenchmarkPDFText(b *testing.B) {
	r := pdftext.New(pdftext.Options{CompilationCache: cache, Interpreter: raceEnabled})
	b.Cleanup(func() { _ = r.Close() })
	var pages []string
	for i := range 20 {
		pages = append(pages, strings.Repeat(fmt.Sprintf("Line %d of a page of the benchmark document.\n", i), 25))
	}
	pdf := extracttest.PDF(b, pages...)
	start := time.Now()
	if _, err := r.PDFText(context.Background(), "warm.pdf", pdf); err != nil { // compiles PDFium
		b.Fatal(err)
	}
	b.Logf("first read, PDFium compiled: %s; %d bytes, %d pages", time.Since(start), len(pdf), len(pages))
	b.SetBytes(int64(len(pdf)))
	for b.Loop() {
		if _, err := r.PDFText(context.Background(), "bench.pdf", pdf); err != nil {
			b.Fatal(err)
		}
	}
}
