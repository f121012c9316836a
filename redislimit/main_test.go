package redislimit

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// quietDials drops go-redis's log lines of failed dials and prints the
// others.
type quietDials struct{}

func (quietDials) Printf(_ context.Context, format string, v ...any) {
	if strings.Contains(format, "failed to dial") {
		return
	}
	log.Output(2, fmt.Sprintf(format, v...))
}

// TestMain quiets go-redis's log of failed dials, a line for each while a
// test's Redis is stopped: hundreds of lines of failures the tests expect
// would bury the one a test reports.
func TestMain(m *testing.M) {
	redis.SetLogger(quietDials{})
	os.Exit(m.Run())
}
