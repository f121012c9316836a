package extract

import (
	"fmt"
	"net/http"

	"github.com/chatgate/chatgate/apierror"
)

// The errors of files at fault. Each call's error is derived from one of
// them with a message naming the file (errors.Is matches the sentinel).
var (
	// ErrUnsupported answers a file whose type is none of Formats.
	ErrUnsupported = apierror.New(http.StatusBadRequest, "unsupported_file_type",
		"the file's type is not supported; send txt, md, html, csv, docx or pdf")
	// ErrInvalid answers a file of a supported type that cannot be read as
	// one: a corrupt docx or pdf, a binary file named .txt, a file with no
	// text.
	ErrInvalid = apierror.New(http.StatusBadRequest, "invalid_file", "the file cannot be read")
)

// Invalid returns ErrInvalid for the file named name, saying why: "is
// not a valid DOCX", say.
func Invalid(name, format string, args ...any) error {
	return ErrInvalid.WithMessage("invalid field \"file\": %q %s", name, fmt.Sprintf(format, args...))
}
