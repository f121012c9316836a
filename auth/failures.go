package auth

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Defaults of the failure throttle and the audit trail's bounds.
const (
	DefaultFailureLimitPerMinute = 60
	DefaultMaxTrackedAddrs       = 10_000
	DefaultAuditRetention        = 90 * 24 * time.Hour
	DefaultAuditMaxEvents        = 1_000_000
)

const (
	// failureWindow is the throttle's window and the audit aggregation's bucket.
	failureWindow = time.Minute
	// maxAuditGroups bounds the aggregated events held between writes; past
	// it, failures fold into one group per action and reason whose
	// RemoteIP is OverflowAddr.
	maxAuditGroups = 1000
	// trimEvery is how often the audit trail is trimmed, besides at start.
	trimEvery = time.Hour
)

// OverflowAddr is the RemoteIP of an aggregated audit event that counts
// failures from more client addresses than the authenticator tracks at once.
const OverflowAddr = "*"

// failures counts failed authentications in memory: per client address,
// for the throttle, and per (action, reason, address, key, minute), for the
// audit trail, which receives one event per group with its Count instead of
// one per failure. Both maps are bounded, so a flood from any number of
// addresses costs bounded memory and a bounded number of audit writes.
// Everything here is per process: several chatgate processes behind one
// load balancer each throttle and aggregate on their own.
type failures struct {
	limit    int // per address per window; <= 0: no throttle
	maxAddrs int

	mu     sync.Mutex
	addrs  map[netip.Addr]*addrWindow
	groups map[groupKey]*AuditEvent
}

type addrWindow struct {
	start time.Time
	n     int
}

type groupKey struct {
	action AuditAction
	reason string
	ip     string
	keyID  string
	bucket int64 // unix minute
}

func newFailures(limit, maxAddrs int) *failures {
	return &failures{limit: limit, maxAddrs: maxAddrs, addrs: map[netip.Addr]*addrWindow{}, groups: map[groupKey]*AuditEvent{}}
}

// throttleKey is the address a client is throttled by: IPv6 clients by
// their /64, which one host usually holds whole, so that walking through
// it does not reset the count.
func throttleKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// count records a failure from client and returns how long the client must
// wait if it is over the limit, or 0. Clients of no known address (direct
// callers of Authenticate) are not throttled.
func (f *failures) count(client netip.Addr, now time.Time) time.Duration {
	if f.limit <= 0 || !client.IsValid() {
		return 0
	}
	k := throttleKey(client)
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.addrs[k]
	if w == nil {
		if len(f.addrs) >= f.maxAddrs {
			f.evictLocked(now)
		}
		w = &addrWindow{start: now}
		f.addrs[k] = w
	} else if !now.Before(w.start.Add(failureWindow)) {
		w.start, w.n = now, 0
	}
	w.n++
	if w.n <= f.limit {
		return 0
	}
	return max(w.start.Add(failureWindow).Sub(now), time.Second)
}

// evictLocked makes room in the address map, keeping at most 7/8 of the
// cap: addresses over their limit first, then others whose minute is still
// running; those whose minute has ended go first. A flood of new addresses
// thus pays for one pass per maxAddrs/8 of them. The map is rebuilt rather
// than deleted from, since a map keeps the room its deleted entries took.
func (f *failures) evictLocked(now time.Time) {
	target := f.maxAddrs - max(f.maxAddrs/8, 1)
	kept := make(map[netip.Addr]*addrWindow, f.maxAddrs)
	for _, throttled := range []bool{true, false} {
		for k, w := range f.addrs {
			if len(kept) >= target {
				break
			}
			if now.Before(w.start.Add(failureWindow)) && (w.n > f.limit) == throttled {
				kept[k] = w
			}
		}
	}
	f.addrs = kept
}

// sweep forgets addresses whose window has ended.
func (f *failures) sweep(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ended := 0
	for _, w := range f.addrs {
		if !now.Before(w.start.Add(failureWindow)) {
			ended++
		}
	}
	if ended == 0 {
		return
	}
	kept := make(map[netip.Addr]*addrWindow, len(f.addrs)-ended)
	for k, w := range f.addrs {
		if now.Before(w.start.Add(failureWindow)) {
			kept[k] = w
		}
	}
	f.addrs = kept
}

// tracked returns how many addresses the throttle remembers.
func (f *failures) tracked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.addrs)
}

// add counts ev into its group.
func (f *failures) add(ev AuditEvent) {
	k := groupKey{action: ev.Action, reason: ev.Reason, ip: ev.RemoteIP, keyID: ev.KeyID,
		bucket: ev.Time.Unix() / int64(failureWindow/time.Second)}
	f.mu.Lock()
	defer f.mu.Unlock()
	if g := f.groups[k]; g != nil {
		g.Count++
		return
	}
	if len(f.groups) >= maxAuditGroups {
		k.ip, k.keyID = OverflowAddr, ""
		ev.RemoteIP, ev.KeyID, ev.Hint, ev.TeamID = OverflowAddr, "", "", ""
		if g := f.groups[k]; g != nil {
			g.Count++
			return
		}
	}
	ev.Count = 1
	f.groups[k] = &ev
}

// take removes and returns the groups whose minute has ended by now, or
// all of them, oldest first.
func (f *failures) take(now time.Time, all bool) []AuditEvent {
	cur := now.Unix() / int64(failureWindow/time.Second)
	f.mu.Lock()
	var out []AuditEvent
	open := map[groupKey]*AuditEvent{} // a new map: see evictLocked
	for k, g := range f.groups {
		if all || k.bucket < cur {
			out = append(out, *g)
		} else {
			open[k] = g
		}
	}
	f.groups = open
	f.mu.Unlock()
	slices.SortFunc(out, func(a, b AuditEvent) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.RemoteIP, b.RemoteIP))
	})
	return out
}

// putBack returns events that could not be written, to be tried again.
// While the store keeps failing, new groups keep coming; beyond the cap
// they are folded into their minute's overflow group, as add folds them,
// so the map stays bounded however long the outage lasts.
func (f *failures) putBack(evs []AuditEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ev := range evs {
		k := groupKey{action: ev.Action, reason: ev.Reason, ip: ev.RemoteIP, keyID: ev.KeyID,
			bucket: ev.Time.Unix() / int64(failureWindow/time.Second)}
		if g := f.groups[k]; g != nil {
			g.Count += ev.Count
			continue
		}
		if len(f.groups) >= maxAuditGroups {
			k.ip, k.keyID = OverflowAddr, ""
			ev.RemoteIP, ev.KeyID, ev.Hint, ev.TeamID = OverflowAddr, "", "", ""
			if g := f.groups[k]; g != nil {
				g.Count += ev.Count
				continue
			}
		}
		e := ev
		f.groups[k] = &e
	}
}
