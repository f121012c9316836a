// Package limit counts what chatgate must count across requests: rates
// (at most N requests in any window) and points quotas (work admitted
// against a budget before it starts, charged after). It defines the two
// small interfaces the domains consume, Limiter and Quota, and their
// in-process implementations, Local and LocalQuota, which are exact for
// one process. The redislimit package implements both on Redis, so that
// several replicas count as one.
//
// The limit/limittest package holds the conformance suites every
// implementation passes.
package limit
