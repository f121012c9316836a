package billing

// CommitState reports how many records wait for l's commit loop and
// whether the loop runs, so that a test can line records up in one
// transaction without guessing how long that takes.
func CommitState(l *BoltLedger) (queued int, running bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue), l.running
}

// PanicOn makes l's commits panic on the records of module, a record no
// caller could make panic, to show what a panic while committing does.
func PanicOn(l *BoltLedger, module string) {
	l.poison = func(r *Record) {
		if r.Module == module {
			panic("poisoned record")
		}
	}
}
