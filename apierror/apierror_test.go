package apierror_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/chatgate/chatgate/apierror"
)

func TestDerivedErrorsMatchOnlyTheirSentinel(t *testing.T) {
	other := apierror.New(400, "invalid_request", "another sentinel with the same code")
	cases := []struct {
		name string
		err  error
		want *apierror.Error
	}{
		{"InvalidRequest", apierror.InvalidRequest("f", "bad %d", 1), apierror.ErrInvalidRequest},
		{"NotFound", apierror.NotFound("app"), apierror.ErrNotFound},
		{"WithMessage", apierror.ErrConflict.WithMessage("x"), apierror.ErrConflict},
		{"WithRetryAfter", other.WithRetryAfter(time.Second), other},
		{"wrapped", fmt.Errorf("ctx: %w", apierror.NotFound("x")), apierror.ErrNotFound},
	}
	all := []*apierror.Error{apierror.ErrInvalidRequest, apierror.ErrNotFound, apierror.ErrConflict, other}
	for _, c := range cases {
		for _, s := range all {
			if got := errors.Is(c.err, s); got != (s == c.want) {
				t.Errorf("%s: errors.Is(_, %q %q) = %v", c.name, s.Code, s.Message, got)
			}
		}
	}
	if errors.Is(other, apierror.ErrInvalidRequest) || errors.Is(apierror.ErrInvalidRequest, other) {
		t.Error("two sentinels with one code match each other")
	}
}

func TestRetryAfterSecondsRoundsUp(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 0, -time.Second: 0, time.Millisecond: 1, time.Second: 1, 1500 * time.Millisecond: 2} {
		if got := apierror.ErrConflict.WithRetryAfter(d).RetryAfterSeconds(); got != want {
			t.Errorf("RetryAfter %v: %d seconds, want %d", d, got, want)
		}
	}
}

func TestReasonOfOtherErrors(t *testing.T) {
	if got := apierror.Reason(errors.New("disk on fire")); got != "internal_error" {
		t.Errorf("Reason = %q", got)
	}
	if got := apierror.Reason(nil); got != "internal_error" {
		t.Errorf("Reason(nil) = %q", got)
	}
}
