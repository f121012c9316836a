// Package pgstore keeps chat apps and conversation history in Postgres, so
// that any number of replicas of a service serve the same apps and
// continue one another's conversations. Store implements chat.AppStore and
// chat.HistoryStore and passes chattest's suite, as chat.BoltStore does.
//
// Every method reads and writes Postgres and keeps nothing in the process,
// so a write made through one replica is what the next read answers on any
// other. Each method is one statement, so one round trip once its prepared
// statement is cached on the connection: AppendTurn writes the
// conversation and its turn's records atomically, and two replicas
// appending to one chatId at once queue on the conversation's row, so the
// records keep one order and none is lost; DeleteApp takes the app's
// history with it in the same statement.
//
// New applies the package's migrations (tables chat_apps,
// chat_conversations and chat_records, versions in
// chatgate_chat_migrations) under an advisory lock, so replicas may start
// together. Errors that say Postgres could not be reached wrap
// apierror.ErrStorageUnavailable, answered 503; a missing app or
// conversation is chat.ErrAppNotFound or chat.ErrChatNotFound.
package pgstore
