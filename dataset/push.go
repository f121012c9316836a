package dataset

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/internal/field"
	"github.com/chatgate/chatgate/internal/id"
)

// PushRequest is pushData: items to train into a collection.
type PushRequest struct {
	TeamID, KeyID string
	CollectionID  string
	Mode          TrainingMode
	Prompt        string // QA mode: the theme, or a whole template holding {{text}}
	BillID        string
	Data          []PushItem
}

// PushItem is one pushed item, as FastGPT's pushData carries it.
type PushItem struct {
	Q       string  `json:"q"`
	A       string  `json:"a,omitempty"`
	FileID  string  `json:"file_id,omitempty"`
	Source  string  `json:"source,omitempty"`
	Indexes []Index `json:"indexes,omitempty"`
}

// Rejected is a pushed item that was not queued, with the reason.
type Rejected struct {
	PushItem
	Error string `json:"error,omitempty"`
}

// PushResult is pushData's answer. Every item is counted in insertLen or
// listed in exactly one of the other fields.
type PushResult struct {
	InsertLen     int        `json:"insertLen"`
	OverToken     []Rejected `json:"overToken"`
	Repeat        []Rejected `json:"repeat"`
	FileIDInvalid []Rejected `json:"fileIdInvalid"`
	Error         []Rejected `json:"error"`
}

// MaxPushItems is how many items one push may carry.
const MaxPushItems = 2000

// pushOrderStep spaces the creation times of one push's items, so that
// data lists (oldest first) keep the order they were pushed in, a text
// collection's chunks the order of the text. QA pairs, a nanosecond apart,
// stay between their item and the next.
const pushOrderStep = time.Microsecond

// Limits of pushed fields besides q and a, which are bounded by the token
// limits (Options.IndexMaxTokens, QAMaxTokens).
const (
	MaxPromptBytes = 10_000 // a QA prompt or template
	MaxSourceBytes = 2048   // an item's source, one line
	MaxFileIDBytes = 2048   // an item's file_id, one line (URLs)
	MaxIndexes     = 50     // extra index texts of one item, each within the token limit
)

// Push validates the items and queues the good ones for training, all in
// one durable write: when Push returns, every item counted in InsertLen is
// in the queue and will end as data or as a recorded failure. A malformed
// request (a bad mode, prompt, item field or bill) is refused whole with a
// 400 naming the field, queueing nothing.
func (s *Service) Push(ctx context.Context, req PushRequest) (*PushResult, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	if err := s.checkPush(&req); err != nil {
		return nil, err
	}
	c, err := s.collection(ctx, req.TeamID, req.CollectionID)
	if err != nil {
		return nil, err
	}
	if req.Mode == ModeQA {
		ds, err := s.store.Dataset(ctx, c.DatasetID)
		if err != nil {
			return nil, err
		}
		if _, err := s.qaFor(ds); err != nil {
			return nil, err
		}
	}
	if err := s.checkBill(ctx, req.TeamID, req.BillID); err != nil {
		return nil, err
	}
	res, items, from, err := s.stage(ctx, c, req)
	if err != nil {
		return nil, err
	}
	if len(items) > 0 {
		repeats, err := s.store.Enqueue(ctx, items)
		if err != nil {
			return nil, err
		}
		res.addQueued(req, items, from, repeats)
		s.training.Wake()
	}
	return res, nil
}

// checkPush checks what a push is refused whole for, before anything is
// read or written, and fills the default mode.
func (s *Service) checkPush(req *PushRequest) error {
	if req.Mode == "" {
		req.Mode = ModeIndex
	}
	if req.Mode != ModeIndex && req.Mode != ModeQA {
		return apierror.InvalidRequest("mode", "must be index, chunk or qa")
	}
	if len(req.Data) == 0 {
		return apierror.InvalidRequest("data", "must hold at least one item")
	}
	if len(req.Data) > MaxPushItems {
		return apierror.InvalidRequest("data", "holds %d items, more than %d", len(req.Data), MaxPushItems)
	}
	if req.Mode == ModeQA && !s.anyQA() {
		return ErrQAModelUnavailable
	}
	if err := field.Text("prompt", req.Prompt, MaxPromptBytes); err != nil {
		return err
	}
	for i, it := range req.Data {
		at := fmt.Sprintf("data[%d].", i)
		if err := field.First(
			field.Line(at+"source", it.Source, MaxSourceBytes),
			field.Line(at+"file_id", it.FileID, MaxFileIDBytes),
		); err != nil {
			return err
		}
		if len(it.Indexes) > MaxIndexes {
			return apierror.InvalidRequest(at+"indexes", "holds %d indexes, more than %d", len(it.Indexes), MaxIndexes)
		}
	}
	return nil
}

// stage sorts a checked push's items for collection c: the ones to queue,
// as training items (from[i] is the position in req.Data of items[i]), and
// the rejected ones, listed in the result.
func (s *Service) stage(ctx context.Context, c *Collection, req PushRequest) (res *PushResult, items []*TrainingItem, from []int, err error) {
	res = &PushResult{OverToken: []Rejected{}, Repeat: []Rejected{}, FileIDInvalid: []Rejected{}, Error: []Rejected{}}
	now := time.Now().UTC()
	limit := s.opts.IndexMaxTokens
	if req.Mode == ModeQA {
		limit = s.opts.QAMaxTokens
	}
	for i, it := range req.Data {
		q := strings.TrimSpace(it.Q)
		switch {
		case q == "":
			res.Error = append(res.Error, Rejected{it, "q is empty"})
			continue
		case !s.validFileID(ctx, c, it.FileID):
			res.FileIDInvalid = append(res.FileIDInvalid, Rejected{PushItem: it})
			continue
		}
		n, over, err := s.overLimit(ctx, q, it.A, req.Mode, limit)
		if err != nil {
			return nil, nil, nil, err
		}
		if over {
			res.OverToken = append(res.OverToken, Rejected{it, fmt.Sprintf("%d tokens, more than %d", n, limit)})
			continue
		}
		idx := make([]string, len(it.Indexes))
		for j, x := range it.Indexes {
			idx[j] = string(x)
		}
		j, n, err := s.overIndex(ctx, idx, limit)
		if err != nil {
			return nil, nil, nil, err
		}
		if j >= 0 {
			res.OverToken = append(res.OverToken, Rejected{it, fmt.Sprintf("indexes[%d]: %d tokens, more than %d", j, n, limit)})
			continue
		}
		items = append(items, &TrainingItem{ID: id.New(), TeamID: c.TeamID, DatasetID: c.DatasetID,
			CollectionID: c.ID, Mode: req.Mode, Prompt: req.Prompt, Q: q, A: it.A, Source: it.Source,
			FileID: it.FileID, Indexes: cleanIndexes(idx), BillID: req.BillID, KeyID: req.KeyID,
			NextAttempt: now, CreateTime: now.Add(time.Duration(i) * pushOrderStep)})
		from = append(from, i)
	}
	return res, items, from, nil
}

// addQueued counts the staged items the store queued and lists its repeats.
func (res *PushResult) addQueued(req PushRequest, items []*TrainingItem, from, repeats []int) {
	for _, r := range repeats {
		res.Repeat = append(res.Repeat, Rejected{PushItem: req.Data[from[r]]})
	}
	res.InsertLen = len(items) - len(repeats)
}

// overIndex returns the first index text over limit tokens and its count,
// or -1. Like overLimit, it only runs the encoder on texts longer than
// limit bytes.
func (s *Service) overIndex(ctx context.Context, idx []string, limit int) (j, n int, err error) {
	for j, x := range idx {
		if len(x) <= limit {
			continue
		}
		n, err := s.count(ctx, x)
		if err != nil {
			return -1, 0, err
		}
		if n > limit {
			return j, n, nil
		}
	}
	return -1, 0, nil
}

// overLimit reports whether an item's tokens (q's, and a's in index mode)
// exceed limit, and how many there are when they do. A token is at least
// one byte (cl100k_base and every byte-level BPE encode each byte at most
// once), so an item of at most limit bytes is within the limit without
// running the encoder, which would cost as much as the rest of the push:
// training counts the tokens it bills anyway.
func (s *Service) overLimit(ctx context.Context, q, a string, mode TrainingMode, limit int) (int, bool, error) {
	size := len(q)
	if mode == ModeIndex {
		size += len(a)
	}
	if size <= limit {
		return 0, false, nil
	}
	texts := []string{q}
	if mode == ModeIndex {
		texts = append(texts, a)
	}
	n, err := s.count(ctx, texts...)
	return n, n > limit, err
}

// validFileID accepts what FastGPT does: nothing, "manual" or "mark", a
// URL, or the id of a collection of the same dataset.
func (s *Service) validFileID(ctx context.Context, c *Collection, fileID string) bool {
	switch fileID {
	case "", "manual", "mark", c.ID:
		return true
	}
	if u, err := url.Parse(fileID); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return true
	}
	other, err := s.store.Collection(ctx, fileID)
	return err == nil && other.DatasetID == c.DatasetID
}
