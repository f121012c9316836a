package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chatgate/chatgate/apierror"
)

// Unavailable returns err marked as apierror.ErrStorageUnavailable when it
// says that Postgres could not be reached or went away (refused, reset,
// timed out, shutting down, too many connections), so that the request is
// answered 503 storage_unavailable; any other error is returned as it is.
// The answer's message is the sentinel's, never err's, which may name the
// host.
func Unavailable(err error) error {
	if err == nil || errors.Is(err, apierror.ErrStorageUnavailable) || !isUnreachable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", apierror.ErrStorageUnavailable, err)
}

func isUnreachable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case len(pe.Code) == 5 && pe.Code[:2] == "08": // connection exception
			return true
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", pe.Code == "53300": // shutdown, crash, starting, too many connections
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, pgconn.ErrConnClosed) ||
		pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, net.ErrClosed)
}
