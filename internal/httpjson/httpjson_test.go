package httpjson

import (
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
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

type deadlineReader struct{}

func (deadlineReader) Read([]byte) (int, error) { return 0, os.ErrDeadlineExceeded }

// A body read that hit a deadline is a 408 request_timeout, whether the
// reader said how long the limit was or not; never a 400 about JSON.
func TestDecodeBodyTimeout(t *testing.T) {
	for _, tc := range []struct {
		body io.Reader
		want string
	}{
		{deadlineReader{}, "not received in time"},
		{readerFunc(func([]byte) (int, error) { return 0, &BodyTimeoutError{Limit: 3 * time.Second} }), "within 3s"},
	} {
		r := httptest.NewRequest("POST", "/", tc.body)
		var v struct{}
		err := Decode(httptest.NewRecorder(), r, &v, 0)
		var ae APIError
		if !errors.As(err, &ae) || ae.HTTPStatus() != 408 || ae.StatusText() != "request_timeout" || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v; want 408 request_timeout %q", err, tc.want)
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%v does not unwrap to os.ErrDeadlineExceeded", err)
		}
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// Invalid UTF-8 in any string is a 400 naming where it is, never silently
// replaced; valid text, escapes included, passes.
func TestCheckUTF8(t *testing.T) {
	bad := "\xff\xfe"
	for _, tc := range []struct{ in, field string }{
		{`{"name":"` + bad + `"}`, "name"},
		{`{"data":[{"q":"ok"},{"q":"ok"},{"q":"ok"},{"q":"x` + bad + `"}]}`, "data[3].q"},
		{`{"data":[{"q":"ok","indexes":["a",{"text":"` + bad + `"}]}]}`, "data[0].indexes[1].text"},
		{`{"a":{"b":[[1,2],["x","` + bad + `"]]}}`, "a.b[1][1]"},
		{`{"a":1,"b":null,"c":true,"d":"` + bad + `"}`, "d"},
		{`"` + bad + `"`, "body"},
		{`["` + bad + `"]`, "[0]"},
		{`{"k` + bad + `":1}`, "body"},
		{`{"o":{"k` + bad + `":1}}`, "o"},
	} {
		err := CheckUTF8([]byte(tc.in))
		var de *DecodeError
		if !errors.As(err, &de) || de.Field != tc.field || !strings.Contains(de.Reason, "UTF-8") {
			t.Errorf("%q: %v; want a DecodeError naming %q", tc.in, err, tc.field)
		}
	}
	for _, ok := range []string{`{"name":"héllo 世界 \ud83d\ude00 \u0000"}`, `[]`, `{"x":[{"y":"z"}]}`, `{"bad":` /* malformed: the decoder's */} {
		if err := CheckUTF8([]byte(ok)); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	// Decode answers it before decoding.
	var v struct{ Data []struct{ Q string } }
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"Data":[{"Q":"a"},{"Q":"`+bad+`"}]}`))
	err := Decode(httptest.NewRecorder(), r, &v, 0)
	var de *DecodeError
	if !errors.As(err, &de) || de.Field != "Data[1].Q" || len(v.Data) != 0 {
		t.Fatalf("Decode: %v, %+v", err, v)
	}
}

func TestDecodeNamesFieldsOfEmbeddedStructs(t *testing.T) {
	type inner struct {
		Size int `json:"chunkSize"`
	}
	type item struct {
		inner
		Q string `json:"q"`
	}
	type body struct {
		inner
		Items []item `json:"data"`
	}
	for in, want := range map[string]string{
		`{"chunkSize":"x"}`:            `"chunkSize"`,
		`{"data":[{"chunkSize":"x"}]}`: `"data.chunkSize"`,
		`{"data":[{"q":1}]}`:           `"data.q"`,
	} {
		r := httptest.NewRequest("POST", "/", strings.NewReader(in))
		err := Decode(httptest.NewRecorder(), r, new(body), 0)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "inner") {
			t.Errorf("%s: %v, want it to name %s", in, err, want)
		}
	}
}
