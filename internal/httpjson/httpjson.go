// Package httpjson holds the JSON wire plumbing every chatgate domain shares:
// strict, size-limited request decoding and FastGPT's response envelope.
package httpjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxBody is the request body limit used when a handler does not set its own.
const DefaultMaxBody = 1 << 20

// APIError is implemented by errors that know how they appear on the wire.
// apierror.Error implements it; so does DecodeError.
type APIError interface {
	error
	HTTPStatus() int
	StatusText() string
}

// Envelope is FastGPT's response shape; HTTP status always equals Code.
type Envelope struct {
	Code       int    `json:"code"`
	StatusText string `json:"statusText"`
	Message    string `json:"message"`
	Data       any    `json:"data,omitempty"`
}

// DecodeError reports a request body that could not be decoded. Field names
// the offending JSON field where one can be named.
type DecodeError struct {
	Field  string
	Reason string
}

// Error names what in the body could not be read.
func (e *DecodeError) Error() string {
	if e.Field == "" {
		return "invalid request body: " + e.Reason
	}
	return fmt.Sprintf("invalid field %q: %s", e.Field, e.Reason)
}

// HTTPStatus implements APIError.
func (e *DecodeError) HTTPStatus() int { return http.StatusBadRequest }

// StatusText implements APIError.
func (e *DecodeError) StatusText() string { return "invalid_request" }

// Is makes a DecodeError match the invalid_request sentinel
// (apierror.ErrInvalidRequest), as the errors apierror.InvalidRequest makes do: it
// is an invalid request made for one call. Only a sentinel matches (an API
// error that unwraps to nothing), so that errors.Is(decodeErr, x) is never
// true for another call's error or another sentinel's code.
func (e *DecodeError) Is(target error) bool {
	t, ok := target.(interface {
		StatusText() string
		Unwrap() error
	})
	return ok && t.Unwrap() == nil && t.StatusText() == e.StatusText()
}

// BodyTimeoutError reports a request body that did not arrive within the
// server's body read deadline. Limit is that deadline, zero when unknown.
type BodyTimeoutError struct {
	Limit time.Duration
}

// Error says the body did not arrive in time.
func (e *BodyTimeoutError) Error() string {
	if e.Limit <= 0 {
		return "request body was not received in time"
	}
	return fmt.Sprintf("request body was not received within %s", e.Limit)
}

// HTTPStatus implements APIError.
func (e *BodyTimeoutError) HTTPStatus() int { return http.StatusRequestTimeout }

// StatusText implements APIError.
func (e *BodyTimeoutError) StatusText() string { return "request_timeout" }

// Unwrap lets errors.Is(err, os.ErrDeadlineExceeded) see the cause.
func (e *BodyTimeoutError) Unwrap() error { return os.ErrDeadlineExceeded }

// Decode reads r's body into v: at most maxBody bytes (DefaultMaxBody when
// maxBody <= 0), unknown fields rejected, exactly one JSON value, every
// string valid UTF-8 (an invalid one is a 400 naming its field). A comma
// before a closing bracket is tolerated, because FastGPT's own documented
// examples (pushData's) carry one and must work as written.
func Decode(w http.ResponseWriter, r *http.Request, v any, maxBody int64) error {
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return decodeError(err)
	}
	return DecodeBytes(raw, v)
}

// DecodeBytes decodes raw into v as Decode decodes a body: for JSON that
// comes in another wrapping, a multipart form's field say.
func DecodeBytes(raw []byte, v any) error {
	raw = StripTrailingCommas(raw)
	if err := CheckUTF8(raw); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			typ.Field = jsonPath(reflect.TypeOf(v), typ.Field)
		}
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &DecodeError{Reason: "body must hold a single JSON value"}
	}
	return nil
}

// StripTrailingCommas removes each comma that is followed, after white space
// only, by '}' or ']', outside strings. Valid JSON comes back unchanged (and
// unaliased only when something was removed).
func StripTrailingCommas(b []byte) []byte {
	var out []byte // nil until the first removal
	inStr, esc := false, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == ',':
			j := i + 1
			for j < len(b) && (b[j] == ' ' || b[j] == '\t' || b[j] == '\n' || b[j] == '\r') {
				j++
			}
			if j < len(b) && (b[j] == '}' || b[j] == ']') {
				if out == nil {
					out = append(make([]byte, 0, len(b)), b[:i]...)
				}
				continue
			}
		}
		if out != nil {
			out = append(out, c)
		}
	}
	if out == nil {
		return b
	}
	return out
}

// DecodeErr turns an error from encoding/json into a *DecodeError that names
// the field where one can be named, for handlers that decode by hand.
func DecodeErr(err error) error { return decodeError(err) }

func decodeError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
		bte *BodyTimeoutError
	)
	switch {
	case errors.As(err, &bte):
		return bte
	case errors.Is(err, os.ErrDeadlineExceeded): // a deadline set without saying how long
		return &BodyTimeoutError{}
	case errors.As(err, &mbe):
		return &DecodeError{Reason: fmt.Sprintf("body exceeds %d bytes", mbe.Limit)}
	case errors.Is(err, io.EOF):
		return &DecodeError{Reason: "body is empty"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &DecodeError{Reason: "body is truncated JSON"}
	case errors.As(err, &syn):
		return &DecodeError{Reason: fmt.Sprintf("malformed JSON at byte %d", syn.Offset)}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return &DecodeError{Field: field, Reason: "must be " + jsonKind(typ.Type.Kind().String())}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &DecodeError{Field: name, Reason: "unknown field"}
	}
	var ae APIError
	if errors.As(err, &ae) { // a field type's UnmarshalJSON may return a typed error
		return err
	}
	return &DecodeError{Reason: err.Error()}
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	}
	return "a " + k
}

// WriteData answers 200 with data in the envelope.
func WriteData(w http.ResponseWriter, data any) {
	Write(w, http.StatusOK, Envelope{Code: http.StatusOK, Data: data})
}

// WriteError answers err in the envelope. An APIError keeps its status and
// text; anything else is a 500 whose details go to the log, not the client.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var ae APIError
	if errors.As(err, &ae) {
		if ra, ok := ae.(interface{ RetryAfterSeconds() int }); ok && ra.RetryAfterSeconds() > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(ra.RetryAfterSeconds()))
		}
		Write(w, ae.HTTPStatus(), Envelope{Code: ae.HTTPStatus(), StatusText: ae.StatusText(), Message: ae.Error()})
		return
	}
	if log != nil {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	Write(w, http.StatusInternalServerError, Envelope{Code: http.StatusInternalServerError, StatusText: "internal_error", Message: "internal error"})
}

// Write answers v as JSON with the given status.
func Write(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"code":500,"statusText":"internal_error","message":"response encoding failed"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Page reads the offset and pageSize query parameters every list route
// takes: offset >= 0 (default 0), pageSize 1-2000 (default 30).
func Page(q url.Values) (offset, size int, err error) {
	offset, size = 0, 30
	if s := q.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, 0, &DecodeError{Field: "offset", Reason: "must be a non-negative integer"}
		}
		offset = n
	}
	if s := q.Get("pageSize"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 2000 {
			return 0, 0, &DecodeError{Field: "pageSize", Reason: "must be an integer from 1 to 2000"}
		}
		size = n
	}
	return offset, size, nil
}

// jsonPath is encoding/json's path to a field as the body spells it:
// json names the Go names of embedded structs in the path
// ("createParams.chunkSize"), which a client never sent, so they are
// dropped, found by walking t.
func jsonPath(t reflect.Type, path string) string {
	var out []string
	for _, seg := range strings.Split(path, ".") {
		for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map) {
			t = t.Elem()
		}
		if t == nil || t.Kind() != reflect.Struct {
			out, t = append(out, seg), nil
			continue
		}
		if f, ok := t.FieldByName(seg); ok && f.Anonymous && f.Tag.Get("json") == "" {
			t = f.Type
			continue
		}
		out, t = append(out, seg), jsonField(t, seg)
	}
	return strings.Join(out, ".")
}

// jsonField is the type of t's field that JSON names name, nil if none.
func jsonField(t reflect.Type, name string) reflect.Type {
	for _, f := range reflect.VisibleFields(t) {
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == name || tag == "" && strings.EqualFold(f.Name, name) {
			return f.Type
		}
	}
	return nil
}
