package extract

import (
	"archive/zip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxDOCXXML bounds the document part read from a docx: its text is at
// most what a collection holds, and its XML some times that. A zip bomb
// stops here rather than filling memory.
const maxDOCXXML = 256 << 20

// DOCXText returns the text of a docx file: the paragraphs of its main
// document part (word/document.xml), a line each, tabs and breaks kept,
// table cells parted by " | " and rows by lines. Headers, footers,
// comments and embedded objects are left out.
func DOCXText(name string, r io.ReaderAt, size int64) (string, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return "", Invalid(name, "is not a valid DOCX (not a zip archive: %v)", err)
	}
	var part *zip.File
	for _, f := range zr.File {
		if f.Name == "word/document.xml" {
			part = f
			break
		}
	}
	if part == nil {
		return "", Invalid(name, "is not a valid DOCX: it has no word/document.xml")
	}
	rc, err := part.Open()
	if err != nil {
		return "", Invalid(name, "is not a valid DOCX: word/document.xml: %v", err)
	}
	defer rc.Close()
	lr := &io.LimitedReader{R: rc, N: maxDOCXXML + 1}
	text, err := docxParagraphs(lr)
	if lr.N <= 0 {
		return "", Invalid(name, "is not a DOCX this server reads: word/document.xml is larger than %d bytes", maxDOCXXML)
	}
	if err != nil {
		return "", Invalid(name, "is not a valid DOCX: word/document.xml: %v", err)
	}
	return text, nil
}

// wordNS is WordprocessingML's namespace; elements of others (drawings,
// markup compatibility) are passed over.
const wordNS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"

// docxParagraphs reads a document part's text.
func docxParagraphs(r io.Reader) (string, error) {
	dec := xml.NewDecoder(r)
	var (
		out      strings.Builder
		inText   bool
		skip     int  // depth inside elements whose text is not the document's
		cellRuns int  // cells written in the current table row
		space    bool // a paragraph of a cell ended: a space before more text
	)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if skip > 0 {
				skip++
				continue
			}
			if t.Name.Space != wordNS {
				continue
			}
			switch t.Name.Local {
			case "t":
				inText = true
			case "tab":
				out.WriteByte('\t')
			case "br", "cr":
				out.WriteByte('\n')
			case "tc":
				if cellRuns > 0 {
					out.WriteString(" | ")
				}
				cellRuns++
				space = false
			case "tr":
				cellRuns = 0
			case "delText", "instrText", "footnoteReference", "commentReference":
				skip = 1
			}
		case xml.EndElement:
			if skip > 0 {
				skip--
				continue
			}
			if t.Name.Space != wordNS {
				continue
			}
			switch t.Name.Local {
			case "t":
				inText = false
			case "p":
				if cellRuns == 0 {
					out.WriteByte('\n')
				} else {
					space = true
				}
			case "tr":
				out.WriteByte('\n')
				cellRuns, space = 0, false
			}
		case xml.CharData:
			if inText && skip == 0 {
				if space {
					out.WriteByte(' ')
					space = false
				}
				out.Write(t)
			}
		}
	}
	if out.Len() == 0 && dec.InputOffset() == 0 {
		return "", fmt.Errorf("it is empty")
	}
	return out.String(), nil
}
