// Package dataset holds chatgate's knowledge bases: datasets, their
// collections and data, a durable training queue that embeds (or, in QA
// mode, first asks a model to write question/answer pairs), vector and
// full-text indexes, and the search that chat apps retrieve through.
//
// A Service ties the parts together. Its Store is the source of truth:
// records, queued training items and vectors are written there first, in one
// transaction per change, and the VectorStore and TextIndex are rebuilt or
// caught up from it when a Service starts. So a crash at any point loses no
// acknowledged item and indexes none twice.
//
// Handler serves FastGPT's knowledge-base routes (/api/core/dataset/...) on
// a Service.
package dataset
