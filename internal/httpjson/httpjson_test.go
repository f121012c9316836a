package httpjson

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestStripTrailingCommas(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a":1}`, `{"a":1}`},
		{`{"a":1,}`, `{"a":1}`},
		{"{\"a\":[1,2,\n ],\n}", "{\"a\":[1,2\n ]\n}"},
		{`{"a":"x,}"}`, `{"a":"x,}"}`},      // inside a string
		{`{"a":"q\",}",}`, `{"a":"q\",}"}`}, // escaped quote does not end the string
		{`{"a":"\\",}`, `{"a":"\\"}`},       // escaped backslash does
		{`[1,,]`, `[1,]`},                   // only the last comma goes; the rest stays invalid
	} {
		if got := string(StripTrailingCommas([]byte(tc.in))); got != tc.want {
			t.Errorf("StripTrailingCommas(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDecode(t *testing.T) {
	type body struct {
		Name string `json:"name"`
		N    int    `json:"n"`
	}
	for _, tc := range []struct {
		in, field, reason string
	}{
		{``, "", "body is empty"},
		{`{"name":`, "", "truncated"},
		{`{"name":1}`, "name", "must be a string"},
		{`{"n":"x"}`, "n", "must be an integer"},
		{`{"other":1}`, "other", "unknown field"},
		{`{} {}`, "", "single JSON value"},
		{`{"name":"` + strings.Repeat("x", 200) + `"}`, "", "exceeds 64 bytes"},
	} {
		r := httptest.NewRequest("POST", "/", strings.NewReader(tc.in))
		var v body
		err := Decode(httptest.NewRecorder(), r, &v, 64)
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%q: err = %v, want a *DecodeError", tc.in, err)
			continue
		}
		if de.Field != tc.field || !strings.Contains(de.Error(), tc.reason) {
			t.Errorf("%q: field %q, error %q; want field %q and %q", tc.in, de.Field, de.Error(), tc.field, tc.reason)
		}
	}
	var v body
	r := httptest.NewRequest("POST", "/", strings.NewReader("{\"name\":\"a\",\n\"n\":2,\n}"))
	if err := Decode(httptest.NewRecorder(), r, &v, 0); err != nil || v.Name != "a" || v.N != 2 {
		t.Fatalf("trailing comma: %+v, %v", v, err)
	}
}
