package server

import (
	"maps"
	"net/http"
	"net/url"
	"slices"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/internal/httpjson"
)

// uniqueQuery refuses a query string that gives a parameter twice
// (?appId=a&appId=b) or cannot be parsed, with a 400 naming the parameter,
// on every route: handlers read one value, and silently taking the first
// would let a proxy that checks the last and chatgate disagree about what
// was asked. The chat completions routes answer in OpenAI's shape.
func uniqueQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery == "" {
			next.ServeHTTP(w, r)
			return
		}
		bad := checkQuery(r.URL.RawQuery)
		if bad == nil {
			next.ServeHTTP(w, r)
			return
		}
		if isCompletions(r.URL.Path) {
			chat.WriteOpenAIError(w, r, bad)
			return
		}
		httpjson.WriteError(w, r, nil, bad)
	})
}

func checkQuery(raw string) error {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return apierror.InvalidRequest("", "malformed query string: %v", err)
	}
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if n := len(q[k]); n > 1 {
			return apierror.InvalidRequest(k, "is given %d times; give it once", n)
		}
	}
	return nil
}

func isCompletions(path string) bool {
	return path == "/api/v1/chat/completions" || path == "/v1/chat/completions"
}
