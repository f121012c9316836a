package dataset

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/chatgate/chatgate/apierror"
)

// Dataset is a knowledge base: collections of data searched together.
type Dataset struct {
	ID     string `json:"id"`
	TeamID string `json:"teamId"`
	Name   string `json:"name"`
	// VectorModel names the Embedder its data is embedded with; it cannot
	// change, since vectors of two models do not compare.
	VectorModel string `json:"vectorModel"`
	// AgentModel is FastGPT's text-processing model: the QA model of the
	// dataset's QA-mode training, one of Options.QAModels; "": Options.QA.
	AgentModel string `json:"agentModel,omitempty"`
	// Intro and Avatar are FastGPT's description and icon URL, kept as
	// given.
	Intro      string    `json:"intro"`
	Avatar     string    `json:"avatar"`
	CreateTime time.Time `json:"createTime"`
	// UpdateTime is when the dataset was last changed; the zero time for
	// one never changed since it was created.
	UpdateTime time.Time `json:"updateTime,omitzero"`
}

// Collection types.
const (
	CollectionVirtual = "virtual" // created empty, filled by pushData
	CollectionText    = "text"    // created from a text that was split into chunks
	CollectionLink    = "link"    // created from a web page's text (rawLink)
	// CollectionFile is created from the text of an uploaded file, split
	// into chunks as a text is; its name is the file's (FastGPT's "file").
	CollectionFile = "file"
)

// Collection is a named group of data in a dataset, FastGPT's "file".
type Collection struct {
	ID           string       `json:"id"`
	TeamID       string       `json:"teamId"`
	DatasetID    string       `json:"datasetId"`
	Name         string       `json:"name"`
	Type         string       `json:"type"`
	TrainingType TrainingMode `json:"trainingType,omitempty"`
	ChunkSize    int          `json:"chunkSize,omitempty"`
	// Tags are FastGPT's collection tags, kept as given.
	Tags []string `json:"tags,omitempty"`
	// RawLink is the web page a link collection was read from.
	RawLink    string    `json:"rawLink,omitempty"`
	CreateTime time.Time `json:"createTime"`
	// UpdateTime is when the collection was last changed; the zero time
	// for one never changed since it was created.
	UpdateTime time.Time `json:"updateTime,omitzero"`
}

// Data is one searchable item: the question or chunk q that is embedded,
// the answer a stored beside it, and extra index texts that also find it.
type Data struct {
	ID           string    `json:"id"`
	TeamID       string    `json:"teamId"`
	DatasetID    string    `json:"datasetId"`
	CollectionID string    `json:"collectionId"`
	Q            string    `json:"q"`
	A            string    `json:"a"`
	Source       string    `json:"source,omitempty"`
	FileID       string    `json:"file_id,omitempty"`
	Indexes      []string  `json:"indexes,omitempty"`
	CreateTime   time.Time `json:"createTime"`
	UpdateTime   time.Time `json:"updateTime"`
}

// Contains reports whether d's q or a contains text, ASCII letters
// matched regardless of case and every other character as it is (so that
// a store can match in its database the way it matches here). Every text
// contains "".
func (d *Data) Contains(text string) bool {
	return containsFold(d.Q, text) || containsFold(d.A, text)
}

// containsFold reports whether s contains sub, ASCII letters compared
// regardless of case.
func containsFold(s, sub string) bool {
	return strings.Contains(asciiLower(s), asciiLower(sub))
}

// asciiLower lowers the ASCII letters of s byte by byte, leaving every
// other byte, of valid UTF-8 or not, as it is.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

// texts returns what is embedded for d: q first, then each index.
func (d *Data) texts() []string {
	return append([]string{d.Q}, d.Indexes...)
}

// TrainingMode says how pushed data is trained.
type TrainingMode string

// Training modes. FastGPT calls index mode "chunk" in places; both are
// accepted and stored as ModeIndex.
const (
	ModeIndex TrainingMode = "index" // embed q (and indexes), store a beside it
	ModeQA    TrainingMode = "qa"    // ask the QA model for Q/A pairs about q, store each pair
)

// ParseMode accepts "index", "chunk" and "qa"; "" means index.
func ParseMode(s string) (TrainingMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "index", "chunk":
		return ModeIndex, nil
	case "qa":
		return ModeQA, nil
	}
	return "", fmt.Errorf("must be index, chunk or qa, not %q", s)
}

// Index is an extra text that finds a Data item. On the wire it is a string
// or FastGPT's object form {"text": "...", ...}.
type Index string

// UnmarshalJSON accepts "text" and FastGPT's {"text", "type"?, "dataId"?}:
// the type may be default, custom, summary or question (each kept as an
// extra text; q, with a, stays the default index), dataId and _id name the
// vector FastGPT would update, which the texts decide here. Any other
// field, or an image index, is refused by name rather than dropped.
func (x *Index) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*x = Index(s)
		return nil
	}
	var o struct {
		Text         *string         `json:"text"`
		Type         string          `json:"type"`
		DataID       json.RawMessage `json:"dataId"`
		ID           json.RawMessage `json:"_id"`
		DefaultIndex json.RawMessage `json:"defaultIndex"`
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&o); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return apierror.InvalidRequest("indexes", "an index has the field %s, which is not FastGPT's (text, type, dataId)", f)
		}
		return apierror.InvalidRequest("indexes", "each index must be a string or an object with text")
	}
	switch o.Type {
	case "", "default", "custom", "summary", "question":
	case "image":
		return apierror.InvalidRequest("indexes", "image indexes are not supported: an index is a text")
	default:
		return apierror.InvalidRequest("indexes", "an index's type must be default, custom, summary or question, not %q", o.Type)
	}
	if o.Text == nil {
		return apierror.InvalidRequest("indexes", "an index object needs its text")
	}
	*x = Index(*o.Text)
	return nil
}

// TrainingItem is an acknowledged pushData item waiting in the durable
// queue. Its id becomes the id of the Data it trains into (index mode), or
// the prefix of the ids of the pairs it yields (QA mode), so training it a
// second time after a crash rewrites the same records instead of adding more.
type TrainingItem struct {
	ID           string       `json:"id"`
	TeamID       string       `json:"teamId"`
	DatasetID    string       `json:"datasetId"`
	CollectionID string       `json:"collectionId"`
	Mode         TrainingMode `json:"mode"`
	Prompt       string       `json:"prompt,omitempty"`
	Q            string       `json:"q"`
	A            string       `json:"a,omitempty"`
	Source       string       `json:"source,omitempty"`
	FileID       string       `json:"file_id,omitempty"`
	Indexes      []string     `json:"indexes,omitempty"`
	BillID       string       `json:"billId,omitempty"`
	KeyID        string       `json:"keyId,omitempty"`
	Attempts     int          `json:"attempts"`
	NextAttempt  time.Time    `json:"nextAttempt"`
	LastError    string       `json:"lastError,omitempty"`
	Failed       bool         `json:"failed,omitempty"` // permanently; kept so the failure is seen
	CreateTime   time.Time    `json:"createTime"`
}

// JobID implements queue.Job: the item's id.
func (it *TrainingItem) JobID() string { return it.ID }

// JobAttempts implements queue.Job: the attempts made so far.
func (it *TrainingItem) JobAttempts() int { return it.Attempts }

// Vector is one embedding of a Data item. Its ID is the data id for q and
// "<data id>/<n>" for the n-th index text.
type Vector struct {
	ID     string
	Values []float32
}

// dataIDOf returns the Data id a vector id belongs to.
func dataIDOf(vectorID string) string {
	if i := strings.IndexByte(vectorID, '/'); i >= 0 {
		return vectorID[:i]
	}
	return vectorID
}

func vectorID(dataID string, n int) string {
	if n == 0 {
		return dataID
	}
	return fmt.Sprintf("%s/%d", dataID, n)
}
