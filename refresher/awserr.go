package refresher

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// secretLooking is a run of base64 or hex long enough to be a token, a password,
// a secret key or a signature. Account ids (12 digits) and access key ids (20
// characters) are shorter.
var secretLooking = regexp.MustCompile(`[A-Za-z0-9+/=_]{32,}`)

// maxErrorText bounds the server-supplied text kept in an error.
const maxErrorText = 160

// describeAWSError is what is shown of an AWS SDK error: the error code, the
// HTTP status and a short message with anything secret-looking removed. The
// SDK's own text can quote the response body (a deserialization error does),
// and a server may echo what it was sent; neither reaches logs, errors or
// /readyz.
func describeAWSError(err error) string {
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
		return "timed out" + status + ": " + SafeText(err.Error())
	case errors.As(err, &ae):
		msg := SafeText(ae.ErrorMessage())
		if msg != "" {
			msg = ": " + msg
		}
		return SafeText(ae.ErrorCode()) + status + msg
	case errors.As(err, &de):
		return "the answer is not ECR's JSON" + status + " (deserialization failed)"
	}
	return SafeText(err.Error())
}

// safeText keeps text from a server or the SDK fit for a log line: one line,
// printable, secret-looking runs replaced, at most maxErrorText bytes.
func SafeText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, strings.ToValidUTF8(s, ""))
	s = secretLooking.ReplaceAllString(s, "[redacted]")
	return bounded(strings.TrimSpace(s), maxErrorText)
}

// bounded cuts s to at most n bytes, marking the cut.
func bounded(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
