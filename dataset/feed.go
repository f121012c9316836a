package dataset

import "context"

// ChangeFeed is the capability of a Store that several processes share,
// each serving search from a vector index and a full-text index of its
// own, in memory: it tells every process about the changes of data made
// through any of them. A Service whose Store has it loads its indexes
// from SnapshotChanges at start, then follows Changes, woken by
// ListenChanges and, in case a wake-up is lost, every PollEvery; it feeds
// its full-text index from the feed instead of the TextOutbox, which one
// process alone can drain. dataset/pgstore implements it; MemoryStore and
// BoltStore, which serve one process, do not, and a Service on them works
// as it always has.
//
// A Change carries its data item as the store holds it when the change is
// read, not as the change left it. So a reader that applies changes in the
// order they come, each replacing what its indexes hold of the item, ends
// with what the store holds whatever the order in which transactions
// commit, and applying a change twice does no harm.
type ChangeFeed interface {
	// SnapshotChanges calls fn with every data item the store holds, as a
	// Change with its vectors, all read as of one moment, and returns the
	// cursor from which Changes delivers every change that moment did not
	// include (and perhaps a few it did).
	SnapshotChanges(ctx context.Context, fn func(Change) error) (ChangeCursor, error)
	// Changes returns up to n changes committed after cursor after, and
	// the cursor to read on from. It never skips a change, even one whose
	// transaction began before and committed after others that are
	// returned; such a change makes the page Held until it can be read.
	Changes(ctx context.Context, after ChangeCursor, n int) (ChangePage, error)
	// ListenChanges runs until ctx ends, sending on wake, without
	// blocking, whenever changes may have been committed: after each
	// notification, and after each (re)connection, as notifications sent
	// meanwhile are lost. It returns ctx's error.
	ListenChanges(ctx context.Context, wake chan<- struct{}) error
}

// ChangeCursor is a position in a ChangeFeed, opaque to its readers; the
// empty cursor is the start of the feed.
type ChangeCursor string

// Change is a change of a data item, or the deletion of a dataset.
type Change struct {
	DatasetID string
	// DataID is the data item that changed; "" when the dataset was
	// deleted with all it held (its items come as changes of their own).
	DataID string
	// Removed lists the ids of the vectors the change removed.
	Removed []string
	// Data is the item as the store holds it when the change was read;
	// nil once it is deleted. Vectors are its vectors then.
	Data    *Data
	Vectors []Vector
}

// ChangePage is what one read of a ChangeFeed returns.
type ChangePage struct {
	Changes []Change
	// Next is the cursor after Changes, or the one read from when empty.
	Next ChangeCursor
	// Held reports committed changes after Next that cannot be returned
	// yet because a transaction that began before them is still open:
	// read again soon, as their notification may already have come.
	Held bool
	// Reset reports that the feed no longer holds every change after the
	// cursor read from (it keeps changes for a while, not for ever): the
	// reader must load a snapshot again. Changes is then empty.
	Reset bool
}
