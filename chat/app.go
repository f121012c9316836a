package chat

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/internal/field"
)

// DefaultAppID is the app a fresh reference server has.
const DefaultAppID = "main"

// DefaultEmptyAnswer is what an app without its own says when the knowledge
// base has nothing for a question.
const DefaultEmptyAnswer = "I could not find an answer to that in the knowledge base."

// DefaultQuoteTemplate turns the quotes retrieved for a question into the
// system message models read. {{quote}} is replaced by the numbered quotes.
const DefaultQuoteTemplate = "Use the following knowledge-base content to answer. If it does not contain the answer, say so.\n{{quote}}"

// App is a chat application: a model with its prompt and settings.
type App struct {
	ID     string `json:"id"`
	TeamID string `json:"teamId"`
	Name   string `json:"name"`
	// SystemPrompt is sent first; {{key}} is replaced by the request's variables.
	SystemPrompt string `json:"systemPrompt"`
	// Model names the model: "extractive", a model declared in the config,
	// or, with an OpenAI-compatible provider configured, any upstream model.
	Model       string   `json:"model"`
	MaxTokens   int      `json:"maxTokens"`   // 0: the model's default
	Temperature *float64 `json:"temperature"` // nil: the model's default
	// DatasetIDs are searched before answering (once datasets exist).
	DatasetIDs  []string       `json:"datasetIds"`
	Search      SearchSettings `json:"search"`
	EmptyAnswer string         `json:"emptyAnswer"`
	// MaxUsagePoints is the app's budget across all keys; 0: none.
	MaxUsagePoints float64 `json:"maxUsagePoints,omitempty"`
	// QuoteTemplate wraps retrieved quotes; {{quote}} marks where they go.
	QuoteTemplate string    `json:"quoteTemplate"`
	Source        string    `json:"source,omitempty"` // "config" for apps declared in the config file
	CreateTime    time.Time `json:"createTime"`
	UpdateTime    time.Time `json:"updateTime"`
}

// SearchSettings tune retrieval for an app.
type SearchSettings struct {
	Limit      int     `json:"limit"`      // quotes at most; 0: 5
	Similarity float64 `json:"similarity"` // minimum score, 0 to 1
	Mode       string  `json:"mode"`       // embedding (default), fullTextRecall, mixedRecall
}

// appIDPattern is the field package's id charset without ':', which
// share-link chat ids use as their separator.
var appIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// Limits of an app's texts.
const (
	MaxPromptBytes      = 100_000 // systemPrompt and quoteTemplate
	MaxEmptyAnswerBytes = 10_000
	MaxModelNameBytes   = 200
	MaxAppDatasets      = 100
)

// Validate checks the app's fields and fills defaults. Errors name the field.
func (a *App) Validate() error {
	if !appIDPattern.MatchString(a.ID) {
		return apierror.InvalidRequest("id", "must be 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit")
	}
	name, err := field.Name("name", a.Name)
	if err != nil {
		return err
	}
	a.Name = name
	if err := field.First(
		field.OptionalID("teamId", a.TeamID),
		field.Line("model", a.Model, MaxModelNameBytes),
		field.Text("systemPrompt", a.SystemPrompt, MaxPromptBytes),
		field.Text("quoteTemplate", a.QuoteTemplate, MaxPromptBytes),
		field.Text("emptyAnswer", a.EmptyAnswer, MaxEmptyAnswerBytes),
		field.IDs("datasetIds", a.DatasetIDs, MaxAppDatasets),
	); err != nil {
		return err
	}
	switch {
	case a.MaxTokens < 0 || a.MaxTokens > 1_000_000:
		return apierror.InvalidRequest("maxTokens", "must be between 0 and 1000000")
	case a.Temperature != nil && (*a.Temperature < 0 || *a.Temperature > 2):
		return apierror.InvalidRequest("temperature", "must be between 0 and 2")
	case a.Search.Limit < 0 || a.Search.Limit > 100:
		return apierror.InvalidRequest("search.limit", "must be between 0 and 100")
	case a.Search.Similarity < 0 || a.Search.Similarity > 1:
		return apierror.InvalidRequest("search.similarity", "must be between 0 and 1")
	case a.MaxUsagePoints < 0 || math.IsNaN(a.MaxUsagePoints) || math.IsInf(a.MaxUsagePoints, 0):
		return apierror.InvalidRequest("maxUsagePoints", "must be a finite number, 0 for no budget")
	}
	switch a.Search.Mode {
	case "", "embedding", "fullTextRecall", "mixedRecall":
	default:
		return apierror.InvalidRequest("search.mode", "must be embedding, fullTextRecall or mixedRecall")
	}
	if a.TeamID == "" {
		a.TeamID = auth.DefaultTeam
	}
	if a.Model == "" {
		a.Model = ExtractiveModelName
	}
	if a.EmptyAnswer == "" {
		a.EmptyAnswer = DefaultEmptyAnswer
	}
	if a.QuoteTemplate == "" {
		a.QuoteTemplate = DefaultQuoteTemplate
	} else if !strings.Contains(a.QuoteTemplate, "{{quote}}") {
		return apierror.InvalidRequest("quoteTemplate", "must contain {{quote}}")
	}
	return nil
}

// AppStore keeps apps. App ids are scoped to their team: two teams may each
// have an app "support", and neither can see, or learn of, the other's.
// Implementations must be safe for concurrent use, and keep and return
// copies: changing an app after PutApp, or one a read returned, changes
// nothing stored. Package chattest checks an implementation.
type AppStore interface {
	// PutApp creates or replaces the app a.ID of team a.TeamID.
	PutApp(ctx context.Context, a *App) error
	// App returns the team's app with id, or ErrAppNotFound.
	App(ctx context.Context, team, id string) (*App, error)
	// Apps returns the team's apps ordered by id; every team's when team
	// is "", the same id in several teams in team order.
	Apps(ctx context.Context, team string) ([]*App, error)
	// DeleteApp removes the team's app and its history, or returns ErrAppNotFound.
	DeleteApp(ctx context.Context, team, id string) error
}

// appKey is the storage key of a team's app; NUL cannot occur in ids.
func appKey(team, id string) string { return team + "\x00" + id }

// ErrAppNotFound reports an app that does not exist.
var ErrAppNotFound = errors.New("chat: app not found")

// substitute replaces {{key}} in s with the variables' values. Unknown keys
// are left as they are, so a prompt that documents {{name}} stays readable.
func substitute(s string, vars map[string]any) string {
	if len(vars) == 0 || !strings.Contains(s, "{{") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			break
		}
		j := strings.Index(s[i+2:], "}}")
		if j < 0 {
			break
		}
		key := strings.TrimSpace(s[i+2 : i+2+j])
		v, ok := vars[key]
		b.WriteString(s[:i])
		if ok {
			b.WriteString(varString(v))
		} else {
			b.WriteString(s[i : i+4+j])
		}
		s = s[i+4+j:]
	}
	b.WriteString(s)
	return b.String()
}

func varString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}
