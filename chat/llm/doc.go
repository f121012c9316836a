// Package llm connects chat to model providers through langchaingo: any
// OpenAI-compatible server ([NewOpenAI]) and Ollama ([NewOllama]). A [Model]
// is a chat.Model: register it in a chat.Models under the name apps use.
//
// It is a package of its own so that a program using chat with a model of
// its own links neither langchaingo nor the providers' clients. The
// provider's API key is chatgate's own credential: a caller's chatgate key
// is never forwarded. A stream whose upstream sends nothing for
// Config.IdleTimeout is abandoned as stalled. A call nobody reads before
// it is finished (a nil callback, or chat.ModelRequest.Whole: a
// non-stream completion) is a non-stream call to an OpenAI-compatible
// upstream, bounded by Config.WholeTimeout, since such an upstream is
// silent until it has the whole answer. Failures are
// *chat.UpstreamError, which the chat routes answer with 502 (or an error
// event once a stream has started).
//
// The OpenAI provider is a chat.FeatureModel: it takes tools, tool calls
// and results, and image_url parts. Its tool calls go through
// langchaingo's client with two of its gaps worked around on the wire
// (see tools.go): tools, tool_choice and parallel_tool_calls are sent as
// the client gave them, and the stream is read by the client's transport
// (text and tool-call fragments, with their index), which also reads each
// body to its end so that connections to the upstream are reused. Ollama
// takes text only.
package llm
