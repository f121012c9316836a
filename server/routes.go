package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/internal/httpjson"
	"github.com/chatgate/chatgate/shareauth"
)

// The reference server's API: every route, who may call it, and the
// package that serves it. "any key" routes check more themselves (chat
// answers a global key without the chat scope with app_key_required);
// "public" routes take no key (share-link visitors, probes).
// TestRouteTable holds this table to what the server mounts.
//
//	GET    /healthz                                  public          server
//	GET    /metrics                                  public          server
//	POST   /api/support/openapi/create               admin           auth
//	POST   /api/support/openapi/import               admin           auth
//	GET    /api/support/openapi/list                 admin           auth
//	PUT    /api/support/openapi/update               admin           auth
//	DELETE /api/support/openapi/delete               admin           auth
//	POST   /api/support/openapi/rotate               admin           auth
//	GET    /api/support/openapi/audit                admin           auth
//	GET    /api/support/openapi/me                   any key         auth
//	POST   /api/v1/chat/completions                  any key, links  chat
//	POST   /v1/chat/completions                      any key, links  chat
//	GET    /v1/models                                any key         chat
//	GET    /api/v1/models                            any key         chat
//	GET    /v1/models/{model}                        any key         chat
//	GET    /api/v1/models/{model}                    any key         chat
//	POST   /api/v1/sessions/clear                    any key         chat
//	GET    /api/core/chat/getHistories               any key         chat
//	GET    /api/core/chat/getPaginationRecords       any key         chat
//	POST   /api/core/chat/getHistories               any key         chat
//	POST   /api/core/chat/getPaginationRecords       any key         chat
//	POST   /api/core/chat/updateHistory              any key         chat
//	DELETE /api/core/chat/delHistory                 any key         chat
//	DELETE /api/core/chat/clearHistories             any key         chat
//	DELETE /api/core/chat/item/delete                any key         chat
//	POST   /api/core/chat/feedback/updateUserFeedback  any key       chat
//	GET    /api/core/chat/init                       any key         chat
//	GET    /api/core/chat/getResData                 any key         chat
//	POST   /api/core/ai/agent/v2/createQuestionGuide  any key        chat
//	POST   /api/core/ai/agent/createQuestionGuide    any key         chat
//	POST   /api/core/app/create                      admin           chat
//	GET    /api/core/app/list                        admin           chat
//	GET    /api/core/app/detail                      admin           chat
//	PUT    /api/core/app/update                      admin           chat
//	DELETE /api/core/app/del                         admin           chat
//	POST   /api/common/bill/createTrainingBill       dataset:write   billing
//	POST   /api/support/wallet/usage/createTrainingUsage  dataset:write  billing
//	GET    /api/common/bill/detail                   billing:read    billing
//	GET    /api/support/usage/list                   billing:read    billing
//	GET    /api/support/usage/summary                billing:read    billing
//	POST   /api/support/outLink/create               admin           shareauth
//	GET    /api/support/outLink/list                 admin           shareauth
//	PUT    /api/support/outLink/update               admin           shareauth
//	DELETE /api/support/outLink/delete               admin           shareauth
//	POST   /api/core/chat/outLink/init               public          shareauth
//	POST   /api/core/dataset/create                  dataset:write   dataset
//	GET    /api/core/dataset/list                    dataset:read    dataset
//	POST   /api/core/dataset/list                    dataset:read    dataset
//	PUT    /api/core/dataset/update                  dataset:write   dataset
//	GET    /api/core/dataset/detail                  dataset:read    dataset
//	DELETE /api/core/dataset/delete                  dataset:write   dataset
//	POST   /api/core/dataset/collection/create       dataset:write   dataset
//	POST   /api/core/dataset/collection/create/text  dataset:write   dataset
//	POST   /api/core/dataset/collection/create/link  dataset:write   dataset
//	POST   /api/core/dataset/collection/create/localFile  dataset:write  dataset
//	POST   /api/core/dataset/collection/create/apiCollection  dataset:write  dataset
//	POST   /api/proApi/core/dataset/collection/create/externalFileUrl  dataset:write  dataset
//	GET    /api/core/dataset/collection/list         dataset:read    dataset
//	POST   /api/core/dataset/collection/list         dataset:read    dataset
//	POST   /api/core/dataset/collection/listV2       dataset:read    dataset
//	PUT    /api/core/dataset/collection/update       dataset:write   dataset
//	GET    /api/core/dataset/collection/detail       dataset:read    dataset
//	GET    /api/core/dataset/collection/trainingFailures  dataset:read  dataset
//	DELETE /api/core/dataset/collection/delete       dataset:write   dataset
//	POST   /api/core/dataset/collection/delete       dataset:write   dataset
//	POST   /api/core/dataset/data/pushData           dataset:write   dataset
//	GET    /api/core/dataset/data/list               dataset:read    dataset
//	POST   /api/core/dataset/data/list               dataset:read    dataset
//	POST   /api/core/dataset/data/v2/list            dataset:read    dataset
//	GET    /api/core/dataset/data/detail             dataset:read    dataset
//	PUT    /api/core/dataset/data/update             dataset:write   dataset
//	DELETE /api/core/dataset/data/delete             dataset:write   dataset
//	POST   /api/core/dataset/searchTest              dataset:read    dataset
//
// A path of the table called with another method answers 405
// method_not_allowed, with Allow; anything else 404 not_found: under /v1/
// and /api/v1/, where OpenAI's SDKs call, in OpenAI's error shape, so that
// they show the message; elsewhere in the envelope.

// domainRoutes returns each domain's routes, by package.
func (s *Server) domainRoutes() map[string][]auth.Route {
	return map[string][]auth.Route{
		"auth": auth.NewHandler(s.Keys, auth.HandlerOptions{MaxBody: s.cfg.Server.MaxBodyBytes, Logger: s.log}).Routes(),
		"chat": chat.NewHandler(s.Chat, chat.HandlerOptions{MaxBody: s.cfg.Chat.MaxBodyBytes, MaxAPIBody: s.cfg.Server.MaxBodyBytes,
			Heartbeat: time.Duration(s.cfg.Chat.Heartbeat), ResponsesEvent: s.cfg.Chat.ResponsesEvent,
			ShareLinks: shareLinks{s.Share}, Logger: s.log}).Routes(),
		"billing":   billing.NewHandler(s.Billing, billing.HandlerOptions{Logger: s.log}).Routes(),
		"shareauth": shareauth.NewHandler(s.Share, shareauth.HandlerOptions{MaxBody: s.cfg.Server.MaxBodyBytes, Logger: s.log}).Routes(),
		"dataset": dataset.NewHandler(s.Datasets, dataset.HandlerOptions{MaxBody: s.cfg.Dataset.MaxBodyBytes, Pages: s.pages,
			Files: s.files, MaxFileBytes: s.cfg.Dataset.MaxFileBytes, Logger: s.log}).Routes(),
	}
}

// routes mounts the table above: the server's own routes, then every
// domain's, each behind the authenticator.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /metrics", s.metrics.handler())
	for _, rs := range s.domainRoutes() {
		auth.Mount(mux, s.Authn, rs...)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		err := apierror.NotFound("route " + r.Method + " " + r.URL.Path)
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			// The catch-all matches every method, so the mux never says
			// 405 itself: a route called with the wrong method is told so.
			w.Header().Set("Allow", strings.Join(allow, ", "))
			err = errMethodNotAllowed.WithMessage("%s %s: use %s", r.Method, r.URL.Path, strings.Join(allow, " or "))
		}
		if strings.HasPrefix(r.URL.Path, "/v1/") || strings.HasPrefix(r.URL.Path, "/api/v1/") {
			chat.WriteOpenAIError(w, r, err)
			return
		}
		httpjson.WriteError(w, r, s.log, err)
	})
	return s.metrics.instrument(bodyDeadline(s.bodyReadTimeout, uniqueQuery(mux)))
}

// bodyReadTimeout is how long r's body may take to arrive: a file upload
// has dataset.upload_read_timeout, every other body
// server.body_read_timeout.
func (s *Server) bodyReadTimeout(r *http.Request) time.Duration {
	if r.URL.Path == uploadPath {
		return time.Duration(s.cfg.Dataset.UploadReadTimeout)
	}
	return time.Duration(s.cfg.Server.BodyReadTimeout)
}

// errMethodNotAllowed answers a route called with a method it does not take.
var errMethodNotAllowed = apierror.New(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")

// allowedMethods are the methods other than r's that a route of mux (not
// the catch-all) serves at r's path.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	return allow
}

// healthz answers 200 while the database answers, 503 otherwise.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if err := s.be.ping(r.Context()); err != nil {
		httpjson.Write(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
}
