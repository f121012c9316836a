package chat

import "time"

// EventKind says what an Event carries.
type EventKind int

// The kinds of event Engine.Run sends. Node statuses and variables come
// before the deltas and tool calls, and an error or done ends the run.
const (
	// EventNodeStatus: a module (KB Search, AI Chat) starts; Node is set.
	EventNodeStatus EventKind = iota + 1
	// EventVariables: the conversation's variables changed; Variables is set.
	EventVariables
	// EventDelta: a piece of the answer; Delta is set.
	EventDelta
	// EventError: the run failed; Err is set and no event follows.
	EventError
	// EventDone: the run finished; Result is set and no event follows.
	EventDone
	// EventToolCall: a fragment of a tool call the model makes, among the
	// deltas; ToolCall is set.
	EventToolCall
)

// Event is one step of a run, sent to a Sink.
type Event struct {
	Kind  EventKind
	Delta string
	// More, on an EventDelta, says that the next event follows at once
	// (the model had it in hand, see ModelRequest.Ahead): a sink writing
	// to a network may leave this delta unflushed until then.
	More      bool
	ToolCall  ToolCall
	Node      NodeStatus
	Variables map[string]any
	Err       error
	Result    *Result
}

// NodeStatus is FastGPT's flowNodeStatus payload.
type NodeStatus struct {
	Status string `json:"status"` // "running"
	Name   string `json:"name"`   // "KB Search", "AI Chat"
}

// Sink receives a run's events. An error from Send stops the run and is
// returned by Run; streaming sinks return one when the client has gone.
type Sink interface {
	Send(ev Event) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ev Event) error

// Send implements Sink.
func (f SinkFunc) Send(ev Event) error { return f(ev) }

// Result is a finished run.
type Result struct {
	ID           string // chatcmpl-...
	Created      time.Time
	AppID        string
	Model        string // the app's model name
	ChatID       string
	Text         string
	FinishReason string
	// ToolCalls are the calls the model made, whole.
	ToolCalls []ToolCall
	Usage     Usage
	// Responses are the module responses FastGPT calls responseData.
	Responses []ModuleResponse
	// Variables are the conversation's variables after the run.
	Variables map[string]any
}

// ModuleResponse is one module's report, FastGPT's responseData entry.
type ModuleResponse struct {
	ModuleName string `json:"moduleName"`
	// ModuleType is FastGPT's node type: ModuleTypeDatasetSearch or
	// ModuleTypeChat.
	ModuleType string  `json:"moduleType,omitempty"`
	Price      float64 `json:"price"`
	// TotalPoints is what the module cost in points, the figure FastGPT's
	// current responses (and share links' finish reports) carry; Price is
	// the older field, points x 100000.
	TotalPoints  float64 `json:"totalPoints"`
	Model        string  `json:"model,omitempty"`
	Tokens       int     `json:"tokens"`
	InputTokens  int     `json:"inputTokens,omitempty"`
	OutputTokens int     `json:"outputTokens,omitempty"`
	// KB Search
	Similarity *float64 `json:"similarity,omitempty"`
	Limit      int      `json:"limit,omitempty"`
	SearchMode string   `json:"searchMode,omitempty"`
	// AI Chat; Query is FastGPT's current name of Question,
	// HistoryPreview its name of CompleteMessages without the system
	// prompts, ContextTotalLen their count.
	Query            string            `json:"query,omitempty"`
	HistoryPreview   []CompleteMessage `json:"historyPreview,omitempty"`
	ContextTotalLen  int               `json:"contextTotalLen,omitempty"`
	Question         string            `json:"question,omitempty"`
	Answer           string            `json:"answer,omitempty"`
	MaxToken         int               `json:"maxToken,omitempty"`
	QuoteList        []Quote           `json:"quoteList,omitempty"`
	CompleteMessages []CompleteMessage `json:"completeMessages,omitempty"`
	// RunningTime is the module's duration in seconds.
	RunningTime float64 `json:"runningTime"`
}

// FastGPT's node types of the modules a run reports.
const (
	ModuleTypeDatasetSearch = "datasetSearchNode"
	ModuleTypeChat          = "chatNode"
)

// CompleteMessage is a message as FastGPT reports it in completeMessages.
type CompleteMessage struct {
	Obj   string `json:"obj"` // System, Human or AI
	Value string `json:"value"`
}

func objOf(r Role) string {
	switch r {
	case RoleSystem:
		return "System"
	case RoleAssistant:
		return "AI"
	}
	return "Human"
}
