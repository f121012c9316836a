package shareauth

import (
	"net/http"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/internal/field"
)

// Link is a share link: an app published to visitors without keys.
type Link struct {
	ID     string `json:"shareId"`
	TeamID string `json:"teamId"`
	AppID  string `json:"appId"`
	Name   string `json:"name"`
	Limit  Limit  `json:"limit"`
	// ResponseDetail shows visitors the module responses (responseData and
	// quotes); the finish callback always gets them.
	ResponseDetail bool `json:"responseDetail"`
	Display
	// Secret signs the callbacks. It is stored, since signing needs it, but
	// never listed: the API shows it once, at creation.
	Secret       string    `json:"-"`
	UsagePoints  float64   `json:"usagePoints"`
	LastUsedTime time.Time `json:"lastUsedTime,omitzero"`
	CreateTime   time.Time `json:"createTime"`
}

// Display is what a link shows its visitors of a chat beyond the answer,
// under FastGPT's names. The zero Display, FastGPT's default, shows the
// least; the finish callback always gets everything.
type Display struct {
	// ShowNodeStatus sends the visitor the flowNodeStatus events of a
	// detail stream.
	ShowNodeStatus bool `json:"showNodeStatus"`
	// ShowCompleteQuote shows the quotes' full text (q and a, and the
	// prompt messages that hold them) in the module responses; without
	// it a visitor sees which passages were quoted, not what they say.
	ShowCompleteQuote bool `json:"showCompleteQuote"`
	// ShowRawSource shows the quotes' source names.
	ShowRawSource bool `json:"showRawSource"`
	// ImmediateResponse and DefaultResponse are FastGPT's replies for
	// messaging platforms (sent at once, and on failure). They are kept
	// and listed for the link's own front end; chat answers do not use
	// them.
	ImmediateResponse string `json:"immediateResponse,omitempty"`
	DefaultResponse   string `json:"defaultResponse,omitempty"`
}

// DisplayUpdate changes a link's Display; nil fields are kept.
type DisplayUpdate struct {
	ShowNodeStatus, ShowCompleteQuote, ShowRawSource *bool
	ImmediateResponse, DefaultResponse               *string
}

// apply sets u's fields on d.
func (u DisplayUpdate) apply(d *Display) {
	for _, f := range []struct {
		to   *bool
		from *bool
	}{{&d.ShowNodeStatus, u.ShowNodeStatus}, {&d.ShowCompleteQuote, u.ShowCompleteQuote}, {&d.ShowRawSource, u.ShowRawSource}} {
		if f.from != nil {
			*f.to = *f.from
		}
	}
	if u.ImmediateResponse != nil {
		d.ImmediateResponse = *u.ImmediateResponse
	}
	if u.DefaultResponse != nil {
		d.DefaultResponse = *u.DefaultResponse
	}
}

// MaxReplyBytes bounds a link's immediateResponse and defaultResponse.
const MaxReplyBytes = 10_000

func (d *Display) validate() error {
	return field.First(field.Text("immediateResponse", d.ImmediateResponse, MaxReplyBytes),
		field.Text("defaultResponse", d.DefaultResponse, MaxReplyBytes))
}

// Limit bounds a link's use.
type Limit struct {
	ExpiredTime time.Time `json:"expiredTime,omitzero"` // zero: never
	QPM         int       `json:"qpm"`                  // questions per minute; 0: unlimited
	// MaxUsagePoints is the points quota; 0 (the zero Limit) or -1:
	// unlimited, shown as -1 by the API, as on keys.
	MaxUsagePoints float64 `json:"maxUsagePoints"`
	// HookURL is the owner's auth host; "" lets every visitor in.
	HookURL string `json:"hookUrl,omitempty"`
}

// storedLink is how a link is kept: with its secret.
type storedLink struct {
	Link
	Secret string `json:"secret"`
}

// Errors a visitor gets.
var (
	ErrLinkNotFound = &apierror.Error{Status: http.StatusNotFound, Code: apierror.ErrNotFound.Code, Message: "share link not found"}
	ErrLinkExpired  = &apierror.Error{Status: http.StatusForbidden, Code: "share_link_expired", Message: "share link has expired"}
	ErrQPM          = &apierror.Error{Status: http.StatusTooManyRequests, Code: apierror.CodeRateLimited, Message: "share link question rate exceeded"}
	// ErrInitRate answers an init beyond Options.InitPerMinute; the error
	// returned carries a retry delay.
	ErrInitRate  = &apierror.Error{Status: http.StatusTooManyRequests, Code: apierror.CodeRateLimited, Message: "too many visitors are opening this share link; retry shortly"}
	ErrLinkQuota = &apierror.Error{Status: http.StatusTooManyRequests, Code: apierror.CodeInsufficientQuota, Message: "share link has spent its usage points"}
	// ErrNoToken answers a link with an auth host when the visitor has no token.
	ErrNoToken = &apierror.Error{Status: http.StatusUnauthorized, Code: "share_auth_failed", Message: "this share link needs an authToken"}
)
