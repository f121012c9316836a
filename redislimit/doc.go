// Package redislimit counts chatgate's limits in Redis, so that every
// replica of a cluster counts as one: a key limited to N requests a minute
// gets N, whichever replicas its requests reach, and a quota admits work
// against what the whole cluster is running.
//
// A Client implements limit.Limiter (one sliding window per key, in an
// atomic script, on Redis's clock) and limit.Quota (reservations before
// work, charges after, rebuilt from the durable record when Redis loses
// them). A key far from its rate limit is checked once per short lease of
// a few slots rather than once per request, and concurrent checks share a
// pipeline; near the limit every request is one exact check, and a window
// never holds more than N either way. Redis standalone or Sentinel; the quota scripts touch several keys
// and do not run on Redis Cluster.
//
// What the counters hold is not the record: the ledger is. A counter Redis
// loses (a restart, an eviction) is rebuilt from its limit.Source on next
// use, after the replicas have had a moment to tell Redis of the work they
// hold, and every counter is rebuilt at least every Options.CounterTTL, so
// that a charge lost on the way (Redis unreachable, a replica killed between
// the ledger and Redis) is made good.
//
// When Redis does not answer, quotas fail closed (limit.ErrUnavailable, a
// 503) and rates fail as Options.RateFailOpen says; the first failure of an
// incident is logged, and so is the recovery. Service resumes by itself.
// A reservation whose answer was lost (a timeout after its script ran) is
// ended in the background, tried again until its lease would have run
// out, so that an account is not left short of budget by an incident.
package redislimit
