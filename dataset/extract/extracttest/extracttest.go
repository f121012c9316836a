// Package extracttest makes the files extract reads, in memory, for
// tests: a DOCX zip built from paragraphs, and a PDF drawn with fpdf.
// Tests of dataset/extract and of the server's localFile route share
// them, so that no binary fixture is committed.
package extracttest

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	"codeberg.org/go-pdf/fpdf"
)

// DOCX returns a minimal valid docx whose document part holds one
// paragraph per element of paras; a paragraph holding "|" becomes a
// table row of cells instead.
func DOCX(t testing.TB, paras ...string) []byte {
	t.Helper()
	var body strings.Builder
	esc := func(s string) string {
		var b bytes.Buffer
		_ = xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	for _, p := range paras {
		if cells := strings.Split(p, "|"); len(cells) > 1 {
			body.WriteString("<w:tbl><w:tr>")
			for _, c := range cells {
				body.WriteString(`<w:tc><w:p><w:r><w:t>` + esc(strings.TrimSpace(c)) + `</w:t></w:r></w:p></w:tc>`)
			}
			body.WriteString("</w:tr></w:tbl>")
			continue
		}
		// Two runs, the second with a leading space kept, as Word writes
		// a paragraph whose formatting changes mid-way.
		first, rest, _ := strings.Cut(p, " ")
		body.WriteString(`<w:p><w:pPr><w:pStyle w:val="Normal"/></w:pPr><w:r><w:t>` + esc(first) + `</w:t></w:r>`)
		if rest != "" {
			body.WriteString(`<w:r><w:rPr><w:b/></w:rPr><w:t xml:space="preserve"> ` + esc(rest) + `</w:t></w:r>`)
		}
		body.WriteString(`</w:p>`)
	}
	return Zip(t, map[string]string{
		"[Content_Types].xml": `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` +
			`<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
			`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>` +
			`<Default Extension="xml" ContentType="application/xml"/>` +
			`<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`,
		"_rels/.rels": `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` +
			`<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
			`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>`,
		"word/document.xml": `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` +
			`<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>` +
			body.String() + `<w:sectPr/></w:body></w:document>`,
	})
}

// Zip returns a zip archive of files, by name.
func Zip(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// PDF returns a valid PDF with a page per element of pages, each page's
// lines drawn in Helvetica (so Latin-1 text only).
func PDF(t testing.TB, pages ...string) []byte {
	t.Helper()
	return makePDF(t, "", pages)
}

// EncryptedPDF is PDF encrypted with a user password, which a reader
// must be given to open it.
func EncryptedPDF(t testing.TB, password string, pages ...string) []byte {
	t.Helper()
	return makePDF(t, password, pages)
}

func makePDF(t testing.TB, password string, pages []string) []byte {
	p := fpdf.New("P", "mm", "A4", "")
	p.SetCompression(true)
	if password != "" {
		p.SetProtection(fpdf.CnProtectPrint, password, password+"-owner")
	}
	for _, page := range pages {
		p.AddPage()
		p.SetFont("Helvetica", "", 12)
		for _, line := range strings.Split(page, "\n") {
			p.CellFormat(0, 8, line, "", 1, "L", false, 0, "")
		}
	}
	var buf bytes.Buffer
	if err := p.Output(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
