// Package pdftext reads the text of PDFs with PDFium, the PDF engine of
// Chromium, built to WebAssembly and run by wazero (go-pdfium's
// webassembly build): pure Go, no cgo, and the text of real-world PDFs
// (CID fonts, ToUnicode maps, compressed object streams) as a browser
// reads it. It is a package of its own because it links that build (about
// 6 MB): dataset/extract uses it only when given one.
//
// The module is compiled once, on first use (about 5 s on one core), and
// every PDF is read in a fresh instance of it with no file system and a
// memory limit, which is dropped afterwards: a hostile PDF cannot reach
// the host's files, keep memory, or affect the next one; a context that
// ends stops the read.
package pdftext

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/klippa-app/go-pdfium"
	pdfiumerrors "github.com/klippa-app/go-pdfium/errors"
	"github.com/klippa-app/go-pdfium/requests"
	"github.com/klippa-app/go-pdfium/webassembly"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/chatgate/chatgate/dataset/extract"
)

// Options configures a Reader.
type Options struct {
	// Concurrency is how many PDFs are read at once; 2 when zero. A read
	// beyond it waits for one to finish, or for its context.
	Concurrency int
	// Timeout bounds one PDF's read; 60s when zero.
	Timeout time.Duration
	// MemoryLimit bounds one read's memory in bytes; 1 GiB when zero.
	MemoryLimit int64
	// MaxPages bounds the pages read; 5000 when zero. A longer PDF is
	// refused rather than read in part.
	MaxPages int
	// CompilationCache, when set, keeps the compiled module for other
	// Readers given the same cache (wazero.NewCompilationCache), or across
	// restarts (wazero.NewCompilationCacheWithDir): PDFium is then compiled
	// once, not once a Reader.
	CompilationCache wazero.CompilationCache
	// Interpreter runs PDFium in wazero's interpreter instead of compiling
	// it: ready in under a second rather than some (a minute and more
	// under the race detector), each read some times slower. For tests and
	// short-lived programs.
	Interpreter bool
}

// Reader reads PDFs' text. It implements extract.PDFReader and is safe
// for concurrent use; Close releases the compiled module.
type Reader struct {
	opts Options

	once sync.Once
	pool pdfium.Pool
	err  error

	mu     sync.Mutex
	closed bool
}

// New returns a Reader; the module is compiled on the first read.
func New(opts Options) *Reader {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 2
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	if opts.MemoryLimit <= 0 {
		opts.MemoryLimit = 1 << 30
	}
	if opts.MaxPages <= 0 {
		opts.MaxPages = 5000
	}
	return &Reader{opts: opts}
}

// start compiles the module and makes the pool of instances.
func (r *Reader) start() (pdfium.Pool, error) {
	r.once.Do(func() {
		pages := uint32(min(r.opts.MemoryLimit/65536, 65536))
		rc := wazero.NewRuntimeConfig()
		if r.opts.Interpreter {
			rc = wazero.NewRuntimeConfigInterpreter()
		}
		rc = rc.WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling).
			WithMemoryLimitPages(pages).
			WithCloseOnContextDone(true)
		if r.opts.CompilationCache != nil {
			rc = rc.WithCompilationCache(r.opts.CompilationCache)
		}
		r.pool, r.err = webassembly.Init(webassembly.Config{
			MinIdle:  0,
			MaxIdle:  r.opts.Concurrency,
			MaxTotal: r.opts.Concurrency,
			// No mounts: the default would mount the host's / for the module.
			FSConfig: wazero.NewFSConfig(),
			Stdout:   io.Discard,
			Stderr:   io.Discard,
			// The exception-handling feature is what the bundled module
			// needs (go-pdfium's default); closing on a done context is
			// what lets Kill stop a read in flight.
			RuntimeConfig: rc,
		})
		if r.err != nil {
			r.err = fmt.Errorf("pdftext: starting PDFium: %w", r.err)
		}
	})
	return r.pool, r.err
}

// PDFText implements extract.PDFReader: the text of every page, in order,
// pages parted by a blank line. A file PDFium cannot open answers an
// error derived from extract.ErrInvalid naming name: not a PDF, damaged,
// or encrypted with a password.
func (r *Reader) PDFText(ctx context.Context, name string, pdf []byte) (string, error) {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return "", errors.New("pdftext: reader closed")
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("pdftext: reading %q: %w", name, err)
	}
	pool, err := r.start()
	if err != nil {
		return "", err
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	inst, err := pool.GetInstanceWithContext(ctx)
	if err != nil {
		if parent.Err() != nil {
			return "", fmt.Errorf("pdftext: waiting to read %q: %w", name, parent.Err())
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("pdftext: waiting to read %q: %w", name, ctx.Err())
		}
		return "", fmt.Errorf("pdftext: %w", err)
	}
	type result struct {
		text string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		text, err := r.read(inst, name, pdf)
		done <- result{text, err}
	}()
	select {
	case res := <-done:
		_ = inst.Close() // drops the instance and its memory
		return res.text, res.err
	case <-ctx.Done():
		_ = inst.Kill() // stops the read in flight
		<-done
		if parent.Err() == nil { // the read's own timeout, not the caller's
			return "", extract.Invalid(name, "could not be read within %s", r.opts.Timeout)
		}
		return "", fmt.Errorf("pdftext: reading %q: %w", name, ctx.Err())
	}
}

// read reads every page's text in inst.
func (r *Reader) read(inst pdfium.Pdfium, name string, pdf []byte) (string, error) {
	doc, err := inst.OpenDocument(&requests.OpenDocument{File: &pdf})
	switch {
	case errors.Is(err, pdfiumerrors.ErrPassword), errors.Is(err, pdfiumerrors.ErrSecurity):
		return "", extract.Invalid(name, "is an encrypted PDF; send it without a password")
	case err != nil:
		return "", extract.Invalid(name, "is not a valid PDF (%v)", err)
	}
	n, err := inst.FPDF_GetPageCount(&requests.FPDF_GetPageCount{Document: doc.Document})
	if err != nil {
		return "", extract.Invalid(name, "is not a valid PDF: its pages cannot be counted (%v)", err)
	}
	if n.PageCount > r.opts.MaxPages {
		return "", extract.Invalid(name, "has %d pages, more than the %d read here", n.PageCount, r.opts.MaxPages)
	}
	var out strings.Builder
	for i := range n.PageCount {
		page, err := inst.GetPageText(&requests.GetPageText{Page: requests.Page{
			ByIndex: &requests.PageByIndex{Document: doc.Document, Index: i}}})
		if err != nil {
			return "", extract.Invalid(name, "is not a valid PDF: page %d cannot be read (%v)", i+1, err)
		}
		if t := strings.TrimSpace(page.Text); t != "" {
			if out.Len() > 0 {
				out.WriteString("\n\n")
			}
			out.WriteString(t)
		}
	}
	return out.String(), nil
}

// Close releases the module and its instances. Reads after it fail.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	// Waits for a start under way, and keeps one from starting after.
	r.once.Do(func() { r.err = errors.New("pdftext: reader closed") })
	if r.pool == nil {
		return nil
	}
	return r.pool.Close()
}
