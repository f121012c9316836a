package chat

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/chatgate/chatgate/apierror"
)

// Conversation is a stored chat: FastGPT's chatId, the agent channel's sessionId.
type Conversation struct {
	TeamID     string         `json:"teamId"`
	AppID      string         `json:"appId"`
	ChatID     string         `json:"chatId"`
	Title      string         `json:"title"`
	Variables  map[string]any `json:"variables,omitempty"`
	KeyID      string         `json:"keyId,omitempty"`      // the key that started it
	ShareID    string         `json:"shareId,omitempty"`    // the share link it came through
	OutLinkUID string         `json:"outLinkUid,omitempty"` // the share-link visitor
	CreateTime time.Time      `json:"createTime"`
	UpdateTime time.Time      `json:"updateTime"`
	Messages   int            `json:"messages"`
	// CustomTitle and Top are the caller's name for the chat and its pin
	// (updateHistory); AppendTurn keeps the stored ones, so a turn in
	// flight does not undo a rename.
	CustomTitle string `json:"customTitle"`
	Top         bool   `json:"top"`
	// CustomUID is the end user the chat belongs to (customUid or OpenAI's
	// user on the request that created it); a caller naming another end
	// user does not see it. AppendTurn keeps the stored one.
	CustomUID string `json:"customUid,omitempty"`
}

// Sources of conversations, as getHistories' source filter names them.
const (
	SourceAPI   = "api"   // started with a key
	SourceShare = "share" // started through a share link
)

// Source is where the conversation came from: SourceShare or SourceAPI.
func (c *Conversation) Source() string {
	if c.ShareID != "" {
		return SourceShare
	}
	return SourceAPI
}

// Record is one stored message of a conversation.
type Record struct {
	DataID       string           `json:"dataId"`
	Obj          string           `json:"obj"` // Human or AI
	Value        string           `json:"value"`
	Time         time.Time        `json:"time"`
	ResponseData []ModuleResponse `json:"responseData,omitempty"`
	// UserGoodFeedback and UserBadFeedback are the end user's like and
	// dislike of an answer (updateUserFeedback); empty when not given.
	UserGoodFeedback string `json:"userGoodFeedback,omitempty"`
	UserBadFeedback  string `json:"userBadFeedback,omitempty"`
}

// HistoryStore keeps conversations. Implementations must be safe for
// concurrent use and keep and return copies, as an AppStore does, and
// AppendTurn must be atomic: a turn is stored whole or not at all, its
// records together whatever other turns are appended at once. Package
// chattest checks an implementation.
type HistoryStore interface {
	// Conversation returns the conversation and its last limit records
	// (every one when limit <= 0), oldest first, or ErrChatNotFound.
	Conversation(ctx context.Context, team, app, chatID string, limit int) (*Conversation, []Record, error)
	// AppendTurn stores c, creating or updating it, and appends recs to it.
	// The store counts c's messages; c.Messages is ignored, and so are
	// c.CustomTitle and c.Top of a conversation that exists. A conversation
	// that exists with another CustomUID (deleted and started again by
	// another end user while the turn ran) is ErrOtherEndUser, and nothing
	// is stored.
	AppendTurn(ctx context.Context, c *Conversation, recs []Record) error
	// Conversations returns a page of an app's conversations, pinned (Top)
	// first, then most recently updated first (ties by chatId), and how
	// many it has; limit <= 0 is the rest from offset.
	Conversations(ctx context.Context, team, app string, offset, limit int) ([]Conversation, int, error)
	// Records returns a page of a conversation's records, oldest first, and
	// the total, or ErrChatNotFound; limit <= 0 is the rest from offset.
	Records(ctx context.Context, team, app, chatID string, offset, limit int) ([]Record, int, error)
	// DeleteConversation removes a conversation and its records, or returns ErrChatNotFound.
	DeleteConversation(ctx context.Context, team, app, chatID string) error
}

// ErrChatNotFound reports a conversation that does not exist.
var ErrChatNotFound = errors.New("chat: conversation not found")

// ErrOtherEndUser reports a conversation of another end user (CustomUID)
// than the caller named: to them it does not exist, so it is a 404.
var ErrOtherEndUser = apierror.New(http.StatusNotFound, "not_found", "chat not found")

// convKey is the storage key of a conversation; NUL cannot occur in ids.
func convKey(team, app, chatID string) string { return team + "\x00" + app + "\x00" + chatID }

func pageBounds(total, offset, limit int) (int, int) {
	if offset > total {
		offset = total
	}
	end := offset + limit
	if limit <= 0 || end > total {
		end = total
	}
	return offset, end
}
