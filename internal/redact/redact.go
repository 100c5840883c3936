// Package redact keeps what servers and SDKs say fit for logs, errors and
// /readyz: one line, printable, bounded, with anything secret removed. Every
// client of the daemon passes server text through here (README, "Security").
package redact

import (
	"regexp"
	"strings"
	"unicode"
)

// secretLooking is a run of base64 or hex long enough to be a token, a password,
// a secret key or a signature. Account ids (12 digits) and access key ids (20
// characters) are shorter.
var secretLooking = regexp.MustCompile(`[A-Za-z0-9+/=_]{32,}`)

// MaxText bounds the server-supplied text Text keeps.
const MaxText = 160

// Text keeps text from a server or an SDK fit for a log line: one line,
// printable, secret-looking runs replaced, at most MaxText bytes.
func Text(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, strings.ToValidUTF8(s, ""))
	s = secretLooking.ReplaceAllString(s, "[redacted]")
	return Bounded(strings.TrimSpace(s), MaxText)
}

// Bounded cuts s to at most n bytes, marking the cut.
func Bounded(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
