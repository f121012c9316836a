package apierror_test

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/chatgate/chatgate/apierror"
)

// A package defines its sentinels once and derives per-call errors from
// them; callers match the sentinel, or the category by its statusText.
func Example() {
	errShelfFull := apierror.New(http.StatusConflict, "shelf_full", "the shelf is full")

	err := fmt.Errorf("adding a book: %w", errShelfFull.WithMessage("shelf %q holds 40 books", "poetry"))
	fmt.Println(errors.Is(err, errShelfFull), errors.Is(err, apierror.ErrConflict))
	fmt.Println(apierror.Reason(err), err)

	var ae *apierror.Error
	if errors.As(apierror.InvalidRequest("name", "is required"), &ae) {
		fmt.Println(ae.HTTPStatus(), ae.StatusText(), ae.Message)
	}
	// Output:
	// true false
	// shelf_full adding a book: shelf "poetry" holds 40 books
	// 400 invalid_request invalid field "name": is required
}
