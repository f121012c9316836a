// Package dataset holds chatgate's knowledge bases: datasets, their
// collections and data, a durable training queue that embeds (or, in QA
// mode, first asks a model to write question/answer pairs), vector and
// full-text indexes, and the search that chat apps retrieve through.
//
// A Service ties the parts together. Its Store is the source of truth:
// records, queued training items and vectors are written there first, in one
// transaction per change, and the VectorStore and TextIndex are rebuilt or
// caught up from it when a Service starts. So a crash at any point loses no
// acknowledged item and indexes none twice. Three queue.Runners do the
// background work on the Store's queues: training (retried with a backoff,
// failed for good and kept where it can be seen), delivering training
// usage to the UsageRecorder from the outbox its commit filled, and
// catching the full-text index up.
//
// Handler serves FastGPT's knowledge-base routes (/api/core/dataset/...)
// on a Service; Routes lists them with their scopes, Register mounts them
// behind an auth.Guard.
//
// # Layout
//
// The core needs nothing but the standard library, bbolt (BoltStore) and
// cl100k (the default tokens.Counter); what is heavy, or one choice among
// several, lives in a subpackage that a program links only if it imports
// it:
//
//   - dataset: the Service, the Store interfaces (small ones by consumer,
//     Store their composition) with MemoryStore and BoltStore, FlatStore
//     (the default VectorStore), LocalEmbedder, an in-memory TextIndex
//     (the default, the reference server's too), and the Handler.
//   - dataset/fulltext: a TextIndex on bleve, on disk, as the reference
//     server keeps it with dataset.full_text: bleve.
//   - dataset/chromemstore: a VectorStore on chromem-go.
//   - dataset/embedding: Embedders for OpenAI-compatible endpoints and
//     Ollama, through langchaingo.
//   - dataset/rerank: a Reranker for Jina/Cohere-compatible /rerank
//     endpoints, on net/http alone.
//   - dataset/webpage: a PageFetcher for collection/create/link, which
//     reads pages through chatgate's outbound guard (internal addresses
//     refused unless allow-listed; size and time bounded) and extracts
//     their text with go-readability and goquery.
//   - dataset/datasettest: the conformance suite every Store runs, its
//     training queue checked with queue/queuetest.
//
// The subpackages import dataset (embedding and rerank do not even need it); dataset
// imports none of them. Whatever a user plugs in (an Embedder, a
// Generator, a Reranker, a UsageRecorder, a BillChecker, a PageFetcher, a
// tokens.Counter) is a small
// interface with a func adapter.
package dataset
