package dataset

import (
	"cmp"
	"encoding/json"
	"strings"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/internal/field"
)

// createParams are FastGPT's general creation parameters (通用创建参数),
// which every collection/create/* route that splits a text takes:
// collection/create/text and /link here, and the JSON of
// collection/create/localFile's data field. Every one is either honoured
// or refused by name; none is silently dropped.
type createParams struct {
	DatasetID  string          `json:"datasetId"`
	ParentID   json.RawMessage `json:"parentId"` // null or "": no folders here
	Tags       []string        `json:"tags"`
	CreateTime *string         `json:"createTime"`
	BillID     string          `json:"billId"`
	chunkSettings
	createTime time.Time
}

// check vets the parameters and resolves the chunk settings; limits of the
// service (chunkSize's range, the QA model) are checked by
// CreateTextCollection.
func (p *createParams) check() error {
	if err := field.First(field.ID("datasetId", p.DatasetID), rootParent("parentId", p.ParentID),
		field.Line("billId", p.BillID, MaxBillIDBytes)); err != nil {
		return err
	}
	if p.CreateTime != nil {
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(*p.CreateTime))
		if err != nil {
			return apierror.InvalidRequest("createTime", "must be an RFC 3339 time like 2024-01-01T00:00:00.000Z")
		}
		p.createTime = t
	}
	return p.chunkSettings.check()
}

// textCollection is the request the parameters make, without its name
// and text.
func (p *createParams) textCollection(teamID, keyID string) TextCollection {
	c := &p.chunkSettings
	return TextCollection{TeamID: teamID, KeyID: keyID, DatasetID: p.DatasetID, BillID: p.BillID,
		Tags: p.Tags, CreateTime: p.createTime, TrainingType: c.mode,
		ChunkSize: c.ChunkSize, ChunkOverlap: c.ChunkOverlap, IndexSize: c.IndexSize,
		Splitter: c.splitter, Prompt: cmp.Or(c.Prompt, c.QAPrompt), Trigger: c.trigger, TriggerMinSize: c.triggerMin}
}

// chunkSettings are FastGPT's chunk parameters (ChunkSettingsType) as the
// collection create routes take them.
//
// Honoured: trainingType (chunk, qa), chunkSettingMode (auto: the defaults,
// and then none of the custom parameters may be given; custom or absent:
// those given), chunkSplitMode size and char, chunkSize (tokens here),
// chunkSplitter (with char, or with no chunkSplitMode), indexSize when it leaves every chunk one index, qaPrompt
// (with qa), chunkTriggerType with chunkTriggerMinSize (tokens), and
// chatgate's own chunkOverlap and prompt. Refused by name when set to
// anything but their "off" value, since nothing here does it: the index
// and data enhancements (autoIndexes, imageIndex, indexPrefixTitle,
// dataEnhanceCollectionName), customPdfParse, and the paragraph split
// (chunkSplitMode paragraph, paragraphChunkAIMode, paragraphChunkDeep,
// paragraphChunkMinSize).
type chunkSettings struct {
	TrainingType string `json:"trainingType"`

	ChunkSettingMode string `json:"chunkSettingMode"`
	ChunkSplitMode   string `json:"chunkSplitMode"`
	ChunkSize        int    `json:"chunkSize"`
	ChunkOverlap     int    `json:"chunkOverlap"`
	IndexSize        int    `json:"indexSize"`
	ChunkSplitter    string `json:"chunkSplitter"`

	ChunkTriggerType    string `json:"chunkTriggerType"`
	ChunkTriggerMinSize *int   `json:"chunkTriggerMinSize"`

	QAPrompt string `json:"qaPrompt"`
	Prompt   string `json:"prompt"` // chatgate's older name for qaPrompt

	IndexPrefixTitle          *bool `json:"indexPrefixTitle"`
	AutoIndexes               *bool `json:"autoIndexes"`
	ImageIndex                *bool `json:"imageIndex"`
	DataEnhanceCollectionName *bool `json:"dataEnhanceCollectionName"`
	CustomPdfParse            *bool `json:"customPdfParse"`

	ParagraphChunkAIMode  string `json:"paragraphChunkAIMode"`
	ParagraphChunkDeep    *int   `json:"paragraphChunkDeep"`
	ParagraphChunkMinSize *int   `json:"paragraphChunkMinSize"`

	mode       TrainingMode
	splitter   string
	trigger    ChunkTrigger
	triggerMin int
}

// Chunk setting modes: FastGPT's ChunkSettingModeEnum.
const (
	chunkSettingAuto   = "auto"
	chunkSettingCustom = "custom"
)

// Chunk split modes: FastGPT's DataChunkSplitModeEnum.
const (
	splitBySize      = "size"
	splitByChar      = "char"
	splitByParagraph = "paragraph"
)

// DefaultTriggerMinSize is chunkTriggerMinSize when chunkTriggerType is
// minSize and no size is given, FastGPT's default, or the largest chunk
// when that is smaller.
const DefaultTriggerMinSize = 1000

func (c *chunkSettings) check() (err error) {
	if c.mode, err = parseMode("trainingType", c.TrainingType); err != nil {
		return err
	}
	if err := field.First(field.Text("qaPrompt", c.QAPrompt, MaxPromptBytes), field.Text("chunkSplitter", c.ChunkSplitter, 1024)); err != nil {
		return err
	}
	if c.QAPrompt != "" && c.mode != ModeQA {
		return apierror.InvalidRequest("qaPrompt", "is only used with trainingType qa")
	}
	for _, f := range []struct {
		name string
		on   *bool
		why  string
	}{
		{"autoIndexes", c.AutoIndexes, "no extra indexes are generated here; each chunk is its own index"},
		{"imageIndex", c.ImageIndex, "images are not indexed here"},
		{"indexPrefixTitle", c.IndexPrefixTitle, "indexes are the chunk's text alone here"},
		{"dataEnhanceCollectionName", c.DataEnhanceCollectionName, "the collection's name is not added to its data here"},
		{"customPdfParse", c.CustomPdfParse, "there is no enhanced PDF parsing here"},
	} {
		if f.on != nil && *f.on {
			return apierror.InvalidRequest(f.name, "true is not supported: %s; give false or leave it out", f.why)
		}
	}
	switch c.ParagraphChunkAIMode {
	case "", "forbid":
	default:
		return apierror.InvalidRequest("paragraphChunkAIMode", "only \"forbid\" is supported: no model splits paragraphs here")
	}
	if c.ParagraphChunkDeep != nil {
		return apierror.InvalidRequest("paragraphChunkDeep", "is not supported: chunkSplitMode paragraph is not available here")
	}
	if c.ParagraphChunkMinSize != nil {
		return apierror.InvalidRequest("paragraphChunkMinSize", "is not supported: chunkSplitMode paragraph is not available here")
	}
	if err := c.checkTrigger(); err != nil {
		return err
	}
	switch c.ChunkSettingMode {
	case chunkSettingAuto:
		// FastGPT's auto takes none of these; given with auto they would
		// be dropped, so they are refused instead.
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"chunkSplitMode", c.ChunkSplitMode != ""}, {"chunkSize", c.ChunkSize != 0},
			{"chunkOverlap", c.ChunkOverlap != 0}, {"indexSize", c.IndexSize != 0}, {"chunkSplitter", c.ChunkSplitter != ""},
		} {
			if f.set {
				return apierror.InvalidRequest(f.name, "is not used with chunkSettingMode auto, which takes the defaults; give chunkSettingMode custom")
			}
		}
		return nil
	case "", chunkSettingCustom:
	default:
		return apierror.InvalidRequest("chunkSettingMode", "must be auto or custom")
	}
	switch c.ChunkSplitMode {
	case "":
		// FastGPT's documented localFile example sends chunkSplitter
		// without a split mode: the splitter is used.
		c.splitter = c.ChunkSplitter
	case splitBySize:
		if c.ChunkSplitter != "" { // FastGPT's size mode drops it
			return apierror.InvalidRequest("chunkSplitter", "is not used with chunkSplitMode size; give chunkSplitMode char")
		}
	case splitByChar:
		if c.ChunkSplitter == "" {
			return apierror.InvalidRequest("chunkSplitter", "is required with chunkSplitMode char")
		}
		c.splitter = c.ChunkSplitter
	case splitByParagraph:
		return apierror.InvalidRequest("chunkSplitMode", "paragraph is not supported: chunks are cut by size (preferring paragraph breaks) or at chunkSplitter; give size or char")
	default:
		return apierror.InvalidRequest("chunkSplitMode", "must be size or char")
	}
	if c.IndexSize < 0 {
		return apierror.InvalidRequest("indexSize", "must not be negative")
	}
	return nil
}

// checkTrigger reads chunkTriggerType and chunkTriggerMinSize.
func (c *chunkSettings) checkTrigger() error {
	switch ChunkTrigger(c.ChunkTriggerType) {
	case "", TriggerForce:
		c.trigger = TriggerForce
	case TriggerMinSize:
		c.trigger = TriggerMinSize // the service's default size when none is given
		if c.ChunkTriggerMinSize != nil {
			if *c.ChunkTriggerMinSize <= 0 {
				return apierror.InvalidRequest("chunkTriggerMinSize", "must be positive")
			}
			c.triggerMin = *c.ChunkTriggerMinSize
		}
		return nil
	case TriggerMaxSize:
		c.trigger = TriggerMaxSize
	default:
		return apierror.InvalidRequest("chunkTriggerType", "must be minSize, maxSize or forceChunk")
	}
	if c.ChunkTriggerMinSize != nil {
		return apierror.InvalidRequest("chunkTriggerMinSize", "is only used with chunkTriggerType minSize")
	}
	return nil
}

// ChunkTrigger says when a text is split: FastGPT's chunkTriggerType.
type ChunkTrigger string

// The chunk triggers.
const (
	// TriggerForce always splits the text; the default here.
	TriggerForce ChunkTrigger = "forceChunk"
	// TriggerMinSize keeps a text of fewer than TriggerMinSize tokens whole.
	TriggerMinSize ChunkTrigger = "minSize"
	// TriggerMaxSize keeps a text whole when it fits one chunk of the
	// training mode's largest size (the embedding model's or the QA
	// model's input).
	TriggerMaxSize ChunkTrigger = "maxSize"
)
