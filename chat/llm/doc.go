// Package llm connects chat to model providers: any OpenAI-compatible
// server ([NewOpenAI], an [OpenAI]) and Ollama ([NewOllama], through
// langchaingo). Each is a chat.Model: register it in a chat.Models under
// the name apps use.
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
// event once a stream has started); a refusal's status is a *StatusError
// inside it.
//
// The OpenAI provider speaks the chat-completions protocol itself, since
// it is the relay's hot path: it takes tools (sent as the client gave
// them), tool calls and results, and image_url parts; it reads a stream's
// text and tool-call fragments (with their index) as they come, and reads
// each body to its end so that connections to the upstream are reused.
// Ollama takes text only.
package llm
