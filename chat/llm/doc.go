// Package llm connects chat to model providers through langchaingo: any
// OpenAI-compatible server ([NewOpenAI]) and Ollama ([NewOllama]). A [Model]
// is a chat.Model: register it in a chat.Models under the name apps use.
//
// It is a package of its own so that a program using chat with a model of
// its own links neither langchaingo nor the providers' clients. The
// provider's API key is chatgate's own credential: a caller's chatgate key
// is never forwarded. A call whose upstream sends nothing for
// Config.IdleTimeout is abandoned as stalled, and its failures are
// *chat.UpstreamError, which the chat routes answer with 502 (or an error
// event once a stream has started).
//
// The OpenAI provider is a chat.FeatureModel: it takes tools, tool calls
// and results, and image_url parts. Its tool calls go through
// langchaingo's client with two of its gaps worked around on the wire
// (see tools.go): tools, tool_choice and parallel_tool_calls are sent as
// the client gave them, and the stream's tool-call fragments are read with
// their index. Ollama takes text only.
package llm
