package ecrsource

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/redact"
)

// errMalformed marks an ECR answer that cannot be used; asking again soon will
// not fix it.
var errMalformed = malformed{}

type malformed struct{}

func (malformed) Error() string     { return "malformed ecr answer" }
func (malformed) Temporary() bool   { return false }
func (malformed) ErrorCode() string { return "unusable" }

// awsError answers for an AWS SDK error whether retrying soon can help: what the
// SDK itself retries (throttling codes, 5xx, transient codes) and network
// errors are temporary; other client errors, modelled or not (AccessDenied, an
// unknown registry id), are not. Its text is describe's.
type awsError struct{ err error }

func (e awsError) Error() string { return describe(e.err) }
func (e awsError) Unwrap() error { return e.err }

func (e awsError) Temporary() bool {
	var ne net.Error
	if errors.Is(e.err, context.DeadlineExceeded) || errors.Is(e.err, context.Canceled) || errors.As(e.err, &ne) {
		return true
	}
	var mc *MissingCredentialsError
	if errors.As(e.err, &mc) {
		return false
	}
	var ae smithy.APIError
	if !errors.As(e.err, &ae) {
		return true
	}
	if retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(e.err) == aws.TrueTernary {
		return true
	}
	var he *awshttp.ResponseError
	if errors.As(e.err, &he) {
		s := he.HTTPStatusCode()
		return !(s >= 400 && s < 500 && s != 408 && s != 429)
	}
	return ae.ErrorFault() != smithy.FaultClient
}

// ErrorCode names the failure for the ecr_errors_total metric: the AWS error
// code when there is one (a short identifier, never the message), else what
// kind of failure it was.
func (e awsError) ErrorCode() string {
	var ne net.Error
	var mc *MissingCredentialsError
	switch {
	case errors.As(e.err, &mc):
		return "NoCredentials"
	case Code(e.err) != "":
		return Code(e.err)
	case errors.Is(e.err, context.DeadlineExceeded), errors.As(e.err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(e.err, &ne):
		return "network"
	}
	return "other"
}

// validCode accepts what AWS error codes look like, so a server cannot put
// arbitrary text into a label.
func validCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// FailedIn names the innermost AWS operation err failed in: ECR's
// GetAuthorizationToken itself, or one its credentials needed first (STS
// AssumeRole for an assumed role). Empty when no AWS operation failed.
func FailedIn(err error) (service, operation string) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if oe, ok := e.(*smithy.OperationError); ok {
			service, operation = oe.ServiceID, oe.OperationName
		}
	}
	return service, operation
}

// Code is the AWS error code of err, "" when it has none.
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) && validCode(ae.ErrorCode()) {
		return ae.ErrorCode()
	}
	return ""
}

// describe is what is shown of an AWS SDK error: the error code, the HTTP
// status and a short message with anything secret-looking removed. The SDK's
// own text can quote the response body (a deserialization error does), and a
// server may echo what it was sent; neither reaches logs, errors or /readyz.
func describe(err error) string {
	var mc *MissingCredentialsError
	if errors.As(err, &mc) {
		return mc.Error()
	}
	status := ""
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() != 0 {
		status = fmt.Sprintf(" (HTTP %d)", re.HTTPStatusCode())
	}
	var ae smithy.APIError
	var de *smithy.DeserializationError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out" + status + ": " + redact.Text(err.Error())
	case errors.As(err, &ae):
		msg := redact.Text(ae.ErrorMessage())
		if msg != "" {
			msg = ": " + msg
		}
		// The credentials the call needed may have failed first: an assumed
		// role's STS AssumeRole, whose denial is not ECR's.
		if service, op := FailedIn(err); service != "" && service != "ECR" {
			return strings.ToLower(service) + " " + op + ": " + redact.Text(ae.ErrorCode()) + status + msg
		}
		return redact.Text(ae.ErrorCode()) + status + msg
	case errors.As(err, &de):
		return "the answer is not ECR's JSON" + status + " (deserialization failed)"
	}
	return redact.Text(err.Error())
}
