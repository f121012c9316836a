package shareauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/internal/outbound"
)

// HookAnswer is the owner's server's answer to init and start.
type HookAnswer struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
	// Msg is share.mdx's other name for Message ("msg: 同message"); a
	// refusal's text is taken from it when Message is empty.
	Msg  string `json:"msg"`
	Data struct {
		UID string `json:"uid"`
	} `json:"data"`
}

// ErrHookFailed is what a visitor is told whenever the link's auth host
// gave no verdict: unreachable, refused, slow, blocked, a redirect, a
// non-2xx status or a body that is not the answer. It is one answer for all
// of them so that a link cannot be used to tell open, closed and filtered
// targets apart; the operator finds the cause in the log.
var ErrHookFailed = &apierror.Error{Status: http.StatusUnauthorized, Code: "share_auth_failed",
	Message: "the share link's auth server could not verify this visitor"}

// Causes of a hook failure, as logged and passed to Options.OnHookFailure.
const (
	CauseBlocked     = "blocked"     // the address is internal and not on the allow-list
	CauseTimeout     = "timeout"     // no answer within HookTimeout
	CauseUnreachable = "unreachable" // refused, reset, no route, DNS failure, TLS failure
	CauseRedirect    = "redirect"    // a 3xx: never followed
	CauseStatus      = "status"      // any other non-2xx status
	CauseBadAnswer   = "bad_answer"  // a 2xx whose body is not {"success":...}

	causeCanceled = "canceled" // the visitor's request ended first
)

// hookClient calls an auth host.
type hookClient struct {
	http      *http.Client
	timeout   time.Duration
	log       *slog.Logger
	onFailure func(cause string)
}

// call POSTs body, signed with secret, to hookURL + path and returns the
// answer's first MiB.
func (c *hookClient) call(ctx context.Context, l *Link, path string, body any) (*http.Response, []byte, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, nil, err
	}
	target := strings.TrimRight(l.Limit.HookURL, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(raw))
	if err != nil {
		return nil, nil, err
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(l.Secret, ts, raw))
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	ans, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, ans, err
}

// ask calls init or start and fails closed: anything but a timely
// {"success":true} keeps the visitor out. A clean {"success":false} passes
// the host's message on; every other failure is ErrHookFailed.
func (c *hookClient) ask(ctx context.Context, l *Link, path string, body any) (uid string, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, raw, err := c.call(ctx, l, path, body)
	var ans HookAnswer
	cause := ""
	switch {
	case err != nil:
		cause = callCause(ctx, err)
	case resp.StatusCode/100 == 3:
		cause, err = CauseRedirect, fmt.Errorf("answered %d (redirects are not followed)", resp.StatusCode)
	case resp.StatusCode/100 != 2:
		cause, err = CauseStatus, fmt.Errorf("answered %d", resp.StatusCode)
	default:
		// "success" must be there: any JSON service answers {} or
		// {"status":"ok"}, and that is no refusal of this visitor.
		var probe struct {
			Success *bool `json:"success"`
		}
		if json.Unmarshal(raw, &probe) != nil || probe.Success == nil || json.Unmarshal(raw, &ans) != nil {
			cause, err = CauseBadAnswer, fmt.Errorf("answered %d with a body that is not a verdict", resp.StatusCode)
		}
	}
	if cause == causeCanceled {
		return "", ErrHookFailed // the visitor went away; nothing to tell the operator
	}
	if cause != "" {
		c.log.WarnContext(ctx, "shareauth: the auth host gave no verdict; visitor refused",
			"link", l.ID, "hook", redacted(l.Limit.HookURL), "call", path, "cause", cause, "err", err)
		if c.onFailure != nil {
			c.onFailure(cause)
		}
		return "", ErrHookFailed
	}
	if !ans.Success {
		msg := strings.TrimSpace(ans.Message)
		if msg == "" {
			msg = strings.TrimSpace(ans.Msg)
		}
		if msg == "" {
			msg = "the share link's auth server refused"
		}
		return "", &apierror.Error{Status: http.StatusForbidden, Code: "share_auth_denied", Message: msg}
	}
	return ans.Data.UID, nil
}

// redacted hides a password a link stored before hookUrls were vetted
// may still carry.
func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// callCause classifies a failed call; ctx is the call's own, so its
// deadline tells a slow host from the visitor going away.
func callCause(ctx context.Context, err error) string {
	switch {
	case errors.Is(err, outbound.ErrBlocked):
		return CauseBlocked
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return CauseTimeout
	case errors.Is(ctx.Err(), context.Canceled):
		return causeCanceled
	default:
		return CauseUnreachable
	}
}
