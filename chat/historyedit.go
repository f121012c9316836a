package chat

import (
	"context"
	"errors"
)

// ConversationFilter narrows a set of an app's conversations. The zero
// value matches every one.
type ConversationFilter struct {
	// CustomUID, when set, matches only that end user's conversations.
	CustomUID string
	// Source, when set, matches only conversations of that Source.
	Source string
}

// Match reports whether c is in the set.
func (f ConversationFilter) Match(c *Conversation) bool {
	return (f.CustomUID == "" || c.CustomUID == f.CustomUID) && (f.Source == "" || c.Source() == f.Source)
}

// ConversationUpdate is what updateHistory changes; nil fields are left
// as they are.
type ConversationUpdate struct {
	CustomTitle *string
	Top         *bool
}

// Feedback is an end user's verdict on a record. Setting it replaces both
// fields: an empty one withdraws that verdict, as FastGPT's
// updateUserFeedback does for a field left out.
type Feedback struct {
	Good string
	Bad  string
}

// HistorySearcher is a HistoryStore that can narrow its lists and find a
// record by its dataId. The history routes that need it answer 501
// without it. Package chattest checks an implementation.
type HistorySearcher interface {
	// SearchConversations is Conversations narrowed by f: the total is
	// of the conversations f matches.
	SearchConversations(ctx context.Context, team, app string, f ConversationFilter, offset, limit int) ([]Conversation, int, error)
	// Record returns the first record of the conversation with dataId, or
	// ErrChatNotFound or ErrRecordNotFound.
	Record(ctx context.Context, team, app, chatID, dataID string) (*Record, error)
}

// HistoryEditor is a HistoryStore that can change what it keeps beyond
// appending turns. Every change is durable when it returns, and one that
// finds nothing to change returns its not-found error and changes
// nothing. Package chattest checks an implementation.
type HistoryEditor interface {
	// UpdateConversation applies u to a conversation, or returns
	// ErrChatNotFound. It does not change UpdateTime: a pin does not
	// reorder the unpinned.
	UpdateConversation(ctx context.Context, team, app, chatID string, u ConversationUpdate) error
	// DeleteConversations removes the app's conversations that f
	// matches, with their records, and returns how many it removed.
	DeleteConversations(ctx context.Context, team, app string, f ConversationFilter) (int, error)
	// DeleteRecord removes a conversation's records with dataId (the
	// conversation stays, with the rest), or returns ErrChatNotFound or
	// ErrRecordNotFound.
	DeleteRecord(ctx context.Context, team, app, chatID, dataID string) error
	// SetFeedback sets the feedback of a conversation's records with
	// dataId, or returns ErrChatNotFound or ErrRecordNotFound.
	SetFeedback(ctx context.Context, team, app, chatID, dataID string, fb Feedback) error
}

// ErrRecordNotFound reports a record (dataId) a conversation does not hold.
var ErrRecordNotFound = errors.New("chat: record not found")

var (
	_ HistorySearcher = (*MemoryStore)(nil)
	_ HistoryEditor   = (*MemoryStore)(nil)
	_ HistorySearcher = (*BoltStore)(nil)
	_ HistoryEditor   = (*BoltStore)(nil)
)
