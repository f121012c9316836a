package redislimit

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

// quietRedis drops go-redis's own log lines.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// TestMain quiets go-redis, which logs every failed dial while a test's
// Redis is stopped: hundreds of lines of failures the tests expect would
// bury the one a test reports.
func TestMain(m *testing.M) {
	redis.SetLogger(quietRedis{})
	os.Exit(m.Run())
}
