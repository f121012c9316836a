package chat

import "context"

// Visitor is a share-link visitor, who chats without an API key. The
// share-link middleware puts one in the request context before the chat
// handler runs; the handler records the link and visitor on the usage and
// history, hides module responses when the link says so, and leaves the
// finished result on the Visitor for the middleware to report.
type Visitor struct {
	ShareID string
	// UID identifies the visitor: the owner's server's uid, or the link's
	// outLinkUid. Conversations are kept per visitor, so one visitor
	// cannot read another's history by guessing a chatId.
	UID string
	// HideDetail strips responseData and quotes from what the visitor sees.
	HideDetail bool
	// Result is set by the handler when the chat finished; it holds the full
	// module responses whatever HideDetail says.
	Result *Result
}

type visitorKey struct{}

// WithVisitor returns ctx carrying v.
func WithVisitor(ctx context.Context, v *Visitor) context.Context {
	return context.WithValue(ctx, visitorKey{}, v)
}

// VisitorFrom returns the Visitor in ctx, if any.
func VisitorFrom(ctx context.Context) (*Visitor, bool) {
	v, ok := ctx.Value(visitorKey{}).(*Visitor)
	return v, ok
}

// visitorChatID scopes a visitor's chatId to the link and the visitor.
func visitorChatID(v *Visitor, chatID string) string {
	if chatID == "" {
		return ""
	}
	return "share:" + v.ShareID + ":" + v.UID + ":" + chatID
}
