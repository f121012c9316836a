package extract

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"path"
	"strings"
)

// Format is a kind of file the Extractor reads, named by its usual
// extension.
type Format string

// The formats of FastGPT's localFile route.
const (
	TXT  Format = "txt"
	MD   Format = "md"
	HTML Format = "html"
	CSV  Format = "csv"
	DOCX Format = "docx"
	PDF  Format = "pdf"
)

// PDFReader returns the text of a PDF. An error for a file at fault
// should be derived from ErrInvalid (see Invalid); dataset/extract/pdftext's
// Reader implements it.
type PDFReader interface {
	PDFText(ctx context.Context, name string, pdf []byte) (string, error)
}

// Options configures an Extractor.
type Options struct {
	// PDF reads PDFs; without one, a PDF answers ErrUnsupported.
	PDF PDFReader
}

// Extractor reads the text of the files of Formats. It implements
// dataset.FileExtractor, and is safe for concurrent use.
type Extractor struct {
	pdf PDFReader
}

// New returns an Extractor.
func New(opts Options) *Extractor {
	return &Extractor{pdf: opts.PDF}
}

// FormatOf returns the format of a file named name with the given
// content type: its extension decides (FastGPT's does too), and the
// content type only when the name has none.
func FormatOf(name, contentType string) (Format, bool) {
	ext := strings.ToLower(strings.TrimPrefix(path.Ext(name), "."))
	switch ext {
	case "txt", "text":
		return TXT, true
	case "md", "markdown":
		return MD, true
	case "html", "htm":
		return HTML, true
	case "csv":
		return CSV, true
	case "docx":
		return DOCX, true
	case "pdf":
		return PDF, true
	case "":
	default:
		return "", false
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "text/plain":
		return TXT, true
	case "text/markdown":
		return MD, true
	case "text/html":
		return HTML, true
	case "text/csv":
		return CSV, true
	case "application/vnd.openxmlformats-officedocument.wordprocessingml.document":
		return DOCX, true
	case "application/pdf":
		return PDF, true
	}
	return "", false
}

// Extract returns the text of the file named name, read from r. The
// format is FormatOf's; the text has its lines' trailing spaces removed
// and is empty when the file holds none (which callers refuse as they
// see fit).
func (e *Extractor) Extract(ctx context.Context, name, contentType string, r io.Reader) (string, error) {
	f, ok := FormatOf(name, contentType)
	if !ok || (f == PDF && e.pdf == nil) {
		supported := "txt, md, html, csv, docx"
		if e.pdf != nil {
			supported += ", pdf"
		}
		return "", ErrUnsupported.WithMessage("invalid field \"file\": %q is not a supported type; send %s", name, supported)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return "", fmt.Errorf("extract: reading %q: %w", name, err)
	}
	var text string
	switch f {
	case TXT, MD:
		text, err = Text(name, b)
	case HTML:
		text, err = HTMLText(name, b)
	case CSV:
		text, err = CSVText(name, b)
	case DOCX:
		text, err = DOCXText(name, bytes.NewReader(b), int64(len(b)))
	case PDF:
		text, err = e.pdf.PDFText(ctx, name, b)
	}
	if err != nil {
		return "", err
	}
	return tidy(text), nil
}

// tidy removes trailing spaces of lines, runs of more than one blank
// line and the text's leading and trailing blank lines.
func tidy(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	out := lines[:0]
	blank := 0
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\r\u00a0")
		if l == "" {
			blank++
			continue
		}
		if blank > 0 && len(out) > 0 {
			out = append(out, "")
		}
		blank = 0
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
