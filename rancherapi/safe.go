package rancherapi

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// What a Rancher server says in an error envelope ends up in logs, errors and
// /readyz. A server that echoes the request would put the API key or a registry
// password there, and nothing bounds its size. So only what is known to be safe
// is kept (README, "Security"):
//
//   - code: only a known Cattle or norman code (knownCodes), else dropped;
//   - fieldName: only a plain identifier of at most 64 characters;
//   - message: printable, at most maxMessageLen bytes, with every word that
//     holds a secret the request carried (the Authorization header's key, the
//     body's password or secretValue, raw, JSON- or URL-escaped, or base64) cut
//     out, and withheld whole when any longer piece of one remains.

const (
	// maxMessageLen bounds a server's message as kept.
	maxMessageLen = 200
	// scanLen is how much of a message is searched for secrets before it is cut
	// to maxMessageLen.
	scanLen = 8 << 10
	// window is the length of a secret's piece that, found in a message, has
	// the message withheld.
	window = 12
)

// knownCodes are the error codes Cattle (Rancher 1.x, io.github.ibuildthecloud
// gdapi ValidationErrorCodes and Cattle's own) and norman (Rancher 2.x,
// github.com/rancher/norman/httperror/error.go) answer with.
var knownCodes = map[string]bool{
	"ActionNotAvailable": true, "AlreadyExists": true, "BadRequest": true, "ClusterUnavailable": true,
	"Conflict": true, "Forbidden": true, "InvalidAction": true, "InvalidBodyContent": true,
	"InvalidCSRFToken": true, "InvalidCharacters": true, "InvalidDateFormat": true, "InvalidFormat": true,
	"InvalidOption": true, "InvalidReference": true, "InvalidState": true, "InvalidType": true,
	"MaxLengthExceeded": true, "MaxLimitExceeded": true, "MethodNotAllowed": true, "MinLengthExceeded": true,
	"MinLimitExceeded": true, "MissingRequired": true, "NotFound": true, "NotNullable": true, "NotUnique": true,
	"PermissionDenied": true, "ServerAddressUsed": true, "ServerError": true, "Unauthorized": true,
	// Cattle answers some errors with the HTTP status text as the code.
	"Bad Request": true, "Internal Server Error": true, "Method not allowed": true, "Not Found": true,
}

// safeCode returns code when it is a known one, else "".
func safeCode(code string) string {
	if knownCodes[code] {
		return code
	}
	return ""
}

// safeFieldName returns name when it is a plain identifier of at most 64
// characters, else "".
func safeFieldName(name string) string {
	if name == "" || len(name) > 64 {
		return ""
	}
	for i, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || i > 0 && (r >= '0' && r <= '9' || r == '.')) {
			return ""
		}
	}
	return name
}

// secretKeys are the request body fields whose values are secrets.
var secretKeys = map[string]bool{"password": true, "secretvalue": true, "secret": true, "token": true, "auth": true, "secretkey": true}

// requestSecrets returns what req carried that must not come back: the
// Authorization header's credentials (encoded and decoded) and the body's
// secret fields. It reads the body again through GetBody.
func requestSecrets(req *http.Request) []string {
	if req == nil {
		return nil
	}
	var out []string
	auth := req.Header.Get("Authorization")
	if scheme, cred, ok := strings.Cut(auth, " "); ok {
		out = append(out, cred)
		if strings.EqualFold(scheme, "Basic") {
			if raw, err := base64.StdEncoding.DecodeString(cred); err == nil {
				out = append(out, string(raw))
				if _, pw, ok := strings.Cut(string(raw), ":"); ok {
					out = append(out, pw)
				}
			}
		} else if _, secret, ok := strings.Cut(cred, ":"); ok {
			out = append(out, secret)
		}
	}
	if req.GetBody == nil {
		return out
	}
	rc, err := req.GetBody()
	if err != nil {
		return out
	}
	defer rc.Close()
	var body any
	if json.NewDecoder(io.LimitReader(rc, maxObjectBytes)).Decode(&body) == nil {
		out = collectSecrets(body, false, out)
	}
	return out
}

func collectSecrets(v any, secret bool, out []string) []string {
	switch v := v.(type) {
	case string:
		if secret && v != "" {
			out = append(out, v)
		}
	case map[string]any:
		for k, e := range v {
			out = collectSecrets(e, secretKeys[strings.ToLower(k)], out)
		}
	case []any:
		for _, e := range v {
			out = collectSecrets(e, secret, out)
		}
	}
	return out
}

// forms returns the ways a secret may come back: raw, JSON- and URL-escaped,
// and the parts of its base64 (standard and URL alphabet) that are the same
// whatever surrounds it, for each of the three alignments.
func forms(s string) []string {
	out := []string{s}
	if j, err := json.Marshal(s); err == nil && string(j[1:len(j)-1]) != s {
		out = append(out, string(j[1:len(j)-1]))
	}
	if q := url.QueryEscape(s); q != s {
		out = append(out, q)
	}
	for k := range 3 {
		enc := base64.StdEncoding.EncodeToString(append(make([]byte, k), s...))
		start, end := 0, len(enc)
		if k > 0 {
			start = 4 // the first group mixes the padding bytes in
		}
		if (k+len(s))%3 != 0 {
			end -= 4 // the last group depends on what follows
		}
		if end-start >= 8 {
			core := enc[start:end]
			out = append(out, core, strings.NewReplacer("+", "-", "/", "_").Replace(core))
		}
	}
	return out
}

// safeMessage returns msg as it may be shown: printable, bounded, with what
// holds a secret removed (see the top of this file).
func safeMessage(msg string, secrets []string) string {
	if len(msg) > scanLen {
		msg = msg[:scanLen]
	}
	msg = strings.ToValidUTF8(msg, "?")
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || !unicode.IsPrint(r) && r != ' ' {
			return ' '
		}
		return r
	}, msg)
	var all []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if len(s) < 6 && strings.Contains(msg, s) {
			return "" // too short to cut out cleanly
		}
		all = append(all, forms(s)...)
	}
	for _, f := range all {
		if len(f) >= 6 {
			msg = cutWords(msg, f)
		}
	}
	if holdsPiece(msg, all) {
		return "(message withheld: it quotes what was sent)"
	}
	if len(msg) > maxMessageLen {
		cut := maxMessageLen
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return strings.TrimSpace(msg)
}

// cutWords replaces every word of msg that contains f by "[REDACTED]"; words end
// at spaces, quotes and brackets.
func cutWords(msg, f string) string {
	const marker = "[REDACTED]"
	isSep := func(b byte) bool { return strings.IndexByte(" \t\"'`,;(){}[]<>", b) >= 0 }
	// from: searching resumes after the last marker, which may itself hold f
	// (a password "REDACTED").
	for from := 0; from < len(msg); {
		i := strings.Index(msg[from:], f)
		if i < 0 {
			break
		}
		start, end := from+i, from+i+len(f)
		for start > from && !isSep(msg[start-1]) {
			start--
		}
		for end < len(msg) && !isSep(msg[end]) {
			end++
		}
		msg = msg[:start] + marker + msg[end:]
		from = start + len(marker)
	}
	return msg
}

// holdsPiece reports whether msg holds any window-long piece of any of forms.
func holdsPiece(msg string, forms []string) bool {
	if len(msg) < window {
		return false
	}
	pieces := make(map[string]bool, len(msg))
	for i := 0; i+window <= len(msg); i++ {
		pieces[msg[i:i+window]] = true
	}
	for _, f := range forms {
		for i := 0; i+window <= len(f); i++ {
			if pieces[f[i:i+window]] {
				return true
			}
		}
	}
	return false
}

// boundedError is a transport error whose text went through safeMessage (a
// net/http error may quote what the server sent); Unwrap keeps the cause for
// errors.As (TLS errors, net.Error).
type boundedError struct {
	msg string
	err error
}

func (e *boundedError) Error() string { return e.msg }
func (e *boundedError) Unwrap() error { return e.err }

func boundError(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := safeMessage(err.Error(), secrets)
	if msg == err.Error() {
		return err
	}
	if msg == "" {
		msg = "transport error"
	}
	return &boundedError{msg: msg, err: err}
}
