// Package chat is chatgate's OpenAI-compatible chat: apps, the engine that
// answers them, history, models and the HTTP routes.
//
// The [Engine] is usable without HTTP: [Engine.Run] streams typed [Event]s
// to a [Sink]. The [Handler] serves POST /api/v1/chat/completions with
// FastGPT's extensions (chatId/sessionId history, variables, detail) and
// encodes events as the SSE that OpenAI's SDKs read unchanged.
// [Handler.Register] mounts every chat route behind an [auth.Guard], each
// with its scope, body limit and error shape: completions answer refusals
// in OpenAI's shape, the other routes in FastGPT's envelope.
//
// # Layout
//
// This package is the core, and links nothing heavy: a program that imports
// auth and chat with a [Model] of its own links no provider client, no
// tokenizer tables and no index. What it plugs in comes through small
// interfaces in [EngineOptions] and [HandlerOptions], each with a func
// adapter ([ModelFunc], [RetrieverFunc], [UsageRecorderFunc],
// [BudgetReserverFunc], [PricerFunc], [ModelLookupFunc]; tokens.CounterFunc):
//
//   - Models: the offline [Extractive] model ships here; the langchaingo
//     adapters for OpenAI-compatible servers and Ollama are in package
//     chat/llm, which a program imports only if it wants them.
//   - Tokens: the engine counts a turn's tokens, when the model reports
//     none, with a tokens.Counter (package tokens, which imports nothing);
//     tokens.Estimate needs no tables, and package cl100k's Counter counts
//     as OpenAI does (chatgate's server uses it).
//   - Retrieval, usage, prices and budgets: [Retriever], [UsageRecorder],
//     [Pricer] and [BudgetReserver], which the dataset and billing packages
//     satisfy without chat importing them.
//   - Share links: [ShareLinks] admits visitors without a key and hears of
//     their finished chats; chatgate's server implements it over package
//     shareauth.
//   - Storage: [AppStore] and [HistoryStore], kept by [MemoryStore] or
//     [BoltStore]; package chat/chattest is the conformance suite a new
//     implementation runs.
package chat
