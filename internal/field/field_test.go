package field

import (
	"errors"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/internal/httpjson"
)

func wantField(t *testing.T, err error, name, says string) {
	t.Helper()
	var de *httpjson.DecodeError
	if !errors.As(err, &de) || de.Field != name || !strings.Contains(de.Reason, says) || de.HTTPStatus() != 400 {
		t.Fatalf("err = %v; want a 400 naming %q that says %q", err, name, says)
	}
}

func TestID(t *testing.T) {
	for _, ok := range []string{"main", "default", "0123456789abcdef01234567", "cfg-account01", "root", "app.v2", "a:b", "A_b-c",
		strings.Repeat("x", MaxIDLen)} {
		if err := ID("id", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, tc := range []struct{ in, says string }{
		{"", "required"},
		{"default\x00x", "letters, digits"},
		{"has space", "letters, digits"},
		{"-lead", "starting with"},
		{".lead", "starting with"},
		{"é", "letters, digits"},
		{"a/b", "letters, digits"},
		{"\xff", "letters, digits"},
		{strings.Repeat("x", MaxIDLen+1), "longer than 128"},
	} {
		wantField(t, ID("teamId", tc.in), "teamId", tc.says)
	}
	if err := OptionalID("billId", ""); err != nil {
		t.Fatal(err)
	}
	wantField(t, OptionalID("billId", "a\x00"), "billId", "letters")
	wantField(t, IDs("datasetIds", []string{"a", "b", "c d"}, 10), "datasetIds[2]", "letters")
	wantField(t, IDs("datasetIds", []string{"a", "b", "c"}, 2), "datasetIds", "more than 2")
}

func TestName(t *testing.T) {
	got, err := Name("name", "  外部系统 v2\t")
	if err != nil || got != "外部系统 v2" {
		t.Fatalf("%q, %v", got, err)
	}
	if got, err := Name("name", strings.Repeat("名", MaxNameLen)); err != nil || got == "" {
		t.Fatalf("200 characters (600 bytes): %v", err)
	}
	for _, tc := range []struct{ in, says string }{
		{"", "required"},
		{" \t ", "required"},
		{"a\x00b", "control"},
		{"line\nbreak", "control"},
		{"\x7f", "control"},
		{"bad \xff", "UTF-8"},
		{strings.Repeat("x", MaxNameLen+1), "201 characters"},
		{strings.Repeat("x", 10<<20), "more than 200"},
	} {
		_, err := Name("name", tc.in)
		wantField(t, err, "name", tc.says)
	}
	if got, err := OptionalName("name", " "); err != nil || got != "" {
		t.Fatalf("optional empty: %q %v", got, err)
	}
}

func TestTextAndLine(t *testing.T) {
	if err := Text("prompt", "two\nlines\tand a tab", 100); err != nil {
		t.Fatal(err)
	}
	wantField(t, Text("prompt", "nul\x00", 100), "prompt", "NUL")
	wantField(t, Text("prompt", "\xc3", 100), "prompt", "UTF-8")
	wantField(t, Text("prompt", strings.Repeat("x", 101), 100), "prompt", "101 bytes, more than 100")
	if err := Line("source", "https://example.com/a b.pdf", 100); err != nil {
		t.Fatal(err)
	}
	wantField(t, Line("source", "a\nb", 100), "source", "control")
	if err := First(nil, nil); err != nil {
		t.Fatal(err)
	}
	e1, e2 := ID("a", ""), ID("b", "")
	if First(nil, e1, e2) != e1 {
		t.Fatal("First did not return the first error")
	}
}
