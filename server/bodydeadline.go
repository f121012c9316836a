package server

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/chatgate/chatgate/internal/httpjson"
)

// DefaultBodyReadTimeout is how long a client has to send a request body
// when server.body_read_timeout is not set.
const DefaultBodyReadTimeout = 30 * time.Second

// DefaultUploadReadTimeout is how long a client has to send a file to
// collection/create/localFile when dataset.upload_read_timeout is not set.
const DefaultUploadReadTimeout = 5 * time.Minute

// uploadPath is the route whose body is a file upload, read under
// dataset.upload_read_timeout rather than server.body_read_timeout.
const uploadPath = "/api/core/dataset/collection/create/localFile"

// bodyDeadline gives every request body a read deadline of limit, counted
// from when the handler chain starts (just after the headers were read).
// A body not in by then fails its read with an *httpjson.BodyTimeoutError,
// which every decoder answers as 408 request_timeout naming the limit.
//
// It is per request rather than http.Server.ReadTimeout so that the error
// can name the limit and so that nothing after the body is bound by it: the
// deadline is cleared the moment the body has been read to its end, and an
// SSE answer that follows runs as long as it needs. (net/http of Go 1.26
// also clears the connection's deadline when it starts its background read
// at the body's end; clearing it here does not lean on that.) A body that
// is not read to its end, a request refused before its body was looked at,
// keeps the deadline, so net/http gives up discarding it at the same limit.
//
// limitOf gives each request its limit: the upload route has its own.
func bodyDeadline(limitOf func(*http.Request) time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := limitOf(r)
		if limit <= 0 || r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(limit)); err != nil {
			// A ResponseWriter without a connection (a test recorder, a
			// wrapping server that does not unwrap) has nothing to bound.
			next.ServeHTTP(w, r)
			return
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, limit: limit}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody clears the connection's read deadline at the body's end and
// turns a deadline error into the 408 every decoder answers with.
type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	limit   time.Duration
	cleared bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		if !b.cleared {
			b.cleared = true
			_ = b.rc.SetReadDeadline(time.Time{})
		}
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = &httpjson.BodyTimeoutError{Limit: b.limit}
	}
	return n, err
}
