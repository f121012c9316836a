package extract

import (
	"encoding/csv"
	"errors"
	"io"
	"strings"
)

// CSVText returns the text of a csv file as FastGPT's reader makes it:
// each row after the header becomes its cells as "header: value" lines,
// rows parted by a blank line, so that a row keeps its column names
// wherever the text is split. (FastGPT's template import, which reads a
// csv's two columns as q and a, is a different route; pushData is the
// way to send pairs here.) Rows may have fewer or more cells than the
// header; empty cells are left out.
func CSVText(name string, b []byte) (string, error) {
	s, terr := decodeText(b)
	if terr != nil {
		return "", Invalid(name, "%s", terr.reason)
	}
	r := csv.NewReader(strings.NewReader(s))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return "", nil
	}
	if err != nil {
		return "", Invalid(name, "is not valid CSV: %v", err)
	}
	for i := range header {
		header[i] = strings.TrimSpace(header[i])
	}
	var out strings.Builder
	for {
		row, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", Invalid(name, "is not valid CSV: %v", err)
		}
		var lines []string
		for i, cell := range row {
			cell = strings.TrimSpace(cell)
			if cell == "" {
				continue
			}
			if i < len(header) && header[i] != "" {
				cell = header[i] + ": " + cell
			}
			lines = append(lines, cell)
		}
		if len(lines) == 0 {
			continue
		}
		if out.Len() > 0 {
			out.WriteString("\n\n")
		}
		out.WriteString(strings.Join(lines, "\n"))
	}
	if out.Len() == 0 { // a header alone is still text
		return strings.Join(header, "\n"), nil
	}
	return out.String(), nil
}
