// Package chat is chatgate's OpenAI-compatible chat: apps, the engine that
// answers them, history, models and the HTTP routes.
//
// The [Engine] is usable without HTTP: [Engine.Run] streams typed [Event]s
// to a [Sink]. The [Handler] serves POST /api/v1/chat/completions with
// FastGPT's extensions (chatId/sessionId history, variables, detail) and
// encodes events as the SSE that OpenAI's SDKs read unchanged.
//
// Models plug in through the [Model] interface: the offline [Extractive]
// model, which answers with the best-matching knowledge-base quote, and
// langchaingo adapters for OpenAI-compatible servers and Ollama. Retrieval
// and usage accounting come in through the small [Retriever] and
// [UsageRecorder] interfaces, so this package imports no other domain.
package chat
