package shareauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/chatgate/chatgate/auth"
)

// HookAnswer is the owner's server's answer to init and start.
type HookAnswer struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
	Data    struct {
		UID string `json:"uid"`
	} `json:"data"`
}

// hookClient calls an auth host.
type hookClient struct {
	http    *http.Client
	timeout time.Duration
	now     func() time.Time
}

// call POSTs body, signed with secret, to hookURL + path and decodes the
// answer.
func (c *hookClient) call(ctx context.Context, l *Link, path string, body any) (*http.Response, []byte, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, nil, err
	}
	url := strings.TrimRight(l.Limit.HookURL, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		return nil, nil, err
	}
	ts := c.now().Unix()
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
// {"success":true} keeps the visitor out.
func (c *hookClient) ask(ctx context.Context, l *Link, path string, body any) (uid string, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, raw, err := c.call(ctx, l, path, body)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "", authFailed("the share link's auth server did not answer in time")
		}
		return "", authFailed("the share link's auth server could not be reached")
	}
	var ans HookAnswer
	if resp.StatusCode/100 != 2 || json.Unmarshal(raw, &ans) != nil {
		return "", authFailed(fmt.Sprintf("the share link's auth server answered %d without a verdict", resp.StatusCode))
	}
	if !ans.Success {
		msg := strings.TrimSpace(ans.Message)
		if msg == "" {
			msg = "the share link's auth server refused"
		}
		return "", &auth.Error{Status: http.StatusForbidden, Code: "share_auth_denied", Message: msg}
	}
	return ans.Data.UID, nil
}

func authFailed(msg string) error {
	return &auth.Error{Status: http.StatusUnauthorized, Code: "share_auth_failed", Message: msg}
}
