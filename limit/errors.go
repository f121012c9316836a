package limit

import (
	"errors"
	"net/http"

	"github.com/chatgate/chatgate/apierror"
)

// ErrSpent is returned by Quota.Reserve when the account's budget is spent,
// or would be by the work already admitted. Each domain answers it with its
// own error (auth.ErrInsufficientQuota, billing.ErrBudgetSpent, ...).
var ErrSpent = errors.New("limit: quota spent")

// ErrUnavailable answers a request whose limit could not be checked, because
// the counters' store (Redis) did not answer and the limit's policy is to
// fail closed. It is a 503, so clients retry later.
var ErrUnavailable = &apierror.Error{Status: http.StatusServiceUnavailable, Code: "limits_unavailable",
	Message: "usage limits cannot be checked right now; try again shortly"}
