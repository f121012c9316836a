package dataset

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/internal/field"
)

// PageFetcher reads a web page's main text for collection/create/link:
// the readable article, or the text of what selector (a CSS selector)
// matches when one is given. dataset/webpage has one that reads pages
// through chatgate's outbound guard; it lives there so that a program
// importing dataset alone links no HTML parser.
//
// Its errors should be ErrLinkRefused or ErrLinkUnreachable made for the
// call (WithMessage, naming link); any other error is answered as
// ErrLinkUnreachable.
type PageFetcher interface {
	FetchText(ctx context.Context, url, selector string) (title, text string, err error)
}

// The answers of a link that gave no text. A page the server will not
// or cannot use as sent (an internal address, too large, not HTML, no
// text, a selector that matches nothing) is a 400: retrying the same link
// cannot help. A page server that failed (unreachable, not a 2xx, too
// slow) is a 502, as a gateway answers an upstream's failure.
var (
	ErrLinkRefused     = &apierror.Error{Status: http.StatusBadRequest, Code: "link_refused", Message: `invalid field "link": the page cannot be imported`}
	ErrLinkUnreachable = &apierror.Error{Status: http.StatusBadGateway, Code: "link_unreachable", Message: `invalid field "link": the page could not be fetched`}
)

// MaxLinkBytes bounds the link of a link collection.
const MaxLinkBytes = 2048

// linkCollectionBody is POST /api/core/dataset/collection/create/link
// {link, datasetId, parentId?, metadata?: {webPageSelector?}, and
// FastGPT's other creation parameters (createParams)}; data is
// {collectionId, results: pushData's answer}. The collection is named by
// the page's title (the link when it has none) and lists the link as its
// rawLink.
type linkCollectionBody struct {
	createParams
	Link     string          `json:"link"`
	Metadata json.RawMessage `json:"metadata"`
	selector string
}

func (b *linkCollectionBody) check() error {
	link := strings.TrimSpace(b.Link)
	if link == "" {
		return apierror.InvalidRequest("link", "is required")
	}
	if err := field.Line("link", link, MaxLinkBytes); err != nil {
		return err
	}
	if !strings.HasPrefix(strings.ToLower(link), "http://") && !strings.HasPrefix(strings.ToLower(link), "https://") {
		return apierror.InvalidRequest("link", "must be an http(s) URL")
	}
	b.Link = link
	if given(b.Metadata) {
		// metadata is free-form in FastGPT; webPageSelector is the one key
		// read, the others are kept out of the way as text collections'
		// metadata is.
		var md map[string]json.RawMessage
		if err := json.Unmarshal(b.Metadata, &md); err != nil {
			return apierror.InvalidRequest("metadata", "must be an object")
		}
		if raw, ok := md["webPageSelector"]; ok && given(raw) {
			if err := json.Unmarshal(raw, &b.selector); err != nil {
				return apierror.InvalidRequest("metadata.webPageSelector", "must be a string")
			}
			b.selector = strings.TrimSpace(b.selector)
			if err := field.Line("metadata.webPageSelector", b.selector, 1024); err != nil {
				return err
			}
		}
	}
	return b.createParams.check()
}

// createLinkCollection fetches the page, then creates the collection as
// collection/create/text does. The dataset, the bill and the settings are
// checked before the page is fetched, so that a refused request makes no call
// out, and nothing is stored unless the page gave a text.
func (h *Handler) createLinkCollection(ctx context.Context, p *auth.Principal, b *linkCollectionBody) (map[string]any, error) {
	if h.pages == nil {
		return nil, apierror.InvalidRequest("link", "link collections are not enabled on this server")
	}
	tc := b.textCollection(p.TeamID, p.KeyID)
	if err := h.s.live(); err != nil {
		return nil, err
	}
	if _, _, err := h.s.prepareText(ctx, &tc); err != nil {
		return nil, err
	}
	title, text, err := h.pages.FetchText(ctx, b.Link, b.selector)
	if err != nil {
		var ae *apierror.Error
		if !errors.As(err, &ae) {
			err = ErrLinkUnreachable.WithMessage(`invalid field "link": the page could not be fetched: %v`, err)
		}
		return nil, err
	}
	if strings.TrimSpace(text) == "" {
		return nil, ErrLinkRefused.WithMessage(`invalid field "link": the page has no text`)
	}
	tc.Name, tc.Text, tc.RawLink = linkName(title, b.Link), text, b.Link
	c, res, err := h.s.CreateTextCollection(ctx, tc)
	if err != nil {
		return nil, err
	}
	return map[string]any{"collectionId": c.ID, "results": res}, nil
}

// linkName is a link collection's name: the page's title on one line,
// cut to a name's length, or the link.
func linkName(title, link string) string {
	name := strings.Join(strings.Fields(title), " ")
	if name == "" {
		name = link
	}
	if utf8.RuneCountInString(name) > field.MaxNameLen {
		name = string([]rune(name)[:field.MaxNameLen])
	}
	return name
}
