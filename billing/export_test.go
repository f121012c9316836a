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

// Waiting reports how many journaled records wait to be applied and how
// many bbolt refused.
func Waiting(l *BoltLedger) (pending, stuck int) {
	l.pmu.RLock()
	defer l.pmu.RUnlock()
	return len(l.pending), len(l.stuck)
}

// Crash leaves l as a crash would: its journal closed as it is, nothing
// waiting applied, no later apply.
func Crash(l *BoltLedger) {
	l.applyRun.Lock()
	defer l.applyRun.Unlock()
	l.journalMu.Lock()
	defer l.journalMu.Unlock()
	if l.timer != nil {
		l.timer.Stop()
	}
	l.shut = true
	_ = l.j.close()
}

// BreakJournal closes l's journal under it, so that its next write fails.
func BreakJournal(l *BoltLedger) {
	l.journalMu.Lock()
	defer l.journalMu.Unlock()
	_ = l.j.close()
}

// SetJournalLimit sets how large l's journal grows holding applied records
// before an apply rewrites it.
func SetJournalLimit(l *BoltLedger, n int64) {
	l.journalMu.Lock()
	defer l.journalMu.Unlock()
	l.journalLimit = n
}
