package refresher

import (
	"context"
	"errors"
	"net"
	"strings"
)

// permanentError marks an error that retrying soon will not fix.
type permanentError struct{ error }

func (e permanentError) Unwrap() error   { return e.error }
func (e permanentError) Temporary() bool { return false }

// Permanent marks err as one that retrying soon will not fix (a missing
// registry, a refused permission, a Secret that is someone else's): it is
// retried on a slower cadence, so servers are not hammered.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// permanent reports whether an error will not go away by itself soon. Each
// client and target answers for its own errors through a Temporary() bool
// method anywhere in the chain; network and context errors are temporary.
func permanent(err error) bool {
	var pe permanentError
	if errors.As(err, &pe) {
		return true
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.As(err, &ne) {
		return false
	}
	var te interface{ Temporary() bool }
	if errors.As(err, &te) {
		return !te.Temporary()
	}
	return false
}

// errorCode names a failed fetch for the ecr_errors_total metric: the code the
// source's error gives (ErrorCode() string, e.g. an AWS error code), else the
// kind of failure.
func errorCode(err error) string {
	var c interface{ ErrorCode() string }
	var ne net.Error
	switch {
	case errors.As(err, &c):
		return c.ErrorCode()
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &ne):
		return "network"
	}
	return "other"
}

// validUTF8 keeps a label value that Prometheus accepts: client_golang panics on
// invalid UTF-8.
func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
