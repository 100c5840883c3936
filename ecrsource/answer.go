package ecrsource

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// notes are what a source says only once, and so remembers between calls:
// which hosts' expiresAt was not trusted, and whether missing AWS credentials
// were explained in full. ECR and ECR Public answer in the same form
// (docs/ecr.md#ecr-public), so both sources decode, clamp and explain through
// it.
type notes struct {
	mu       sync.Mutex
	warned   map[string]bool // hosts already warned about an implausible expiresAt
	credsMsg bool            // missing AWS credentials were explained in full once
}

// callError is a failed call's error, naming the API asked and the source's
// label. Missing AWS credentials are explained in full once; later failures
// say so in a line.
func (n *notes) callError(api, label string, err error) error {
	var mc *MissingCredentialsError
	if errors.As(err, &mc) {
		n.mu.Lock()
		again := n.credsMsg
		n.credsMsg = true
		n.mu.Unlock()
		if again {
			err = &MissingCredentialsError{again: true}
		}
	}
	return fmt.Errorf("%s get authorization token (%s): %w", api, label, awsError{err})
}

// token completes t (host, region, identity, FetchedAt) with the user and
// password of an authorizationToken, and its expiry: expiresAt when
// plausible, else FetchedAt + refresher.TokenLifetime with one warning per
// host. The error never holds the token.
func (n *notes) token(log logrus.FieldLogger, t refresher.Token, b64 string, expiresAt *time.Time) (refresher.Token, error) {
	user, pw, err := decodeToken(b64)
	if err != nil {
		return refresher.Token{}, err
	}
	t.Username, t.Password = user, pw
	var clamped bool
	t.ExpiresAt, clamped = clampExpiry(expiresAt, t.FetchedAt)
	if clamped {
		n.warnClamped(log, t)
	}
	return t, nil
}

// warnClamped warns once per host when ECR's expiresAt could not be trusted.
func (n *notes) warnClamped(log logrus.FieldLogger, t refresher.Token) {
	n.mu.Lock()
	first := !n.warned[t.ECRHost]
	if n.warned == nil {
		n.warned = map[string]bool{}
	}
	n.warned[t.ECRHost] = true
	n.mu.Unlock()
	if first {
		log.WithFields(logrus.Fields{"registry": t.ECRHost, "assumed_expires_at": t.ExpiresAt.UTC().Format(time.RFC3339)}).
			Warn("ecr expiresAt is in the past or more than 12h ahead (clock skew or an emulator); assuming a 12h token")
	}
}

// decodeToken splits a base64 "user:password" on the first colon only (passwords
// may hold colons). Errors never include the token.
func decodeToken(b64 string) (user, password string, err error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return "", "", fmt.Errorf("%w: authorization token is not base64", errMalformed)
	}
	user, password, ok := strings.Cut(string(raw), ":")
	switch {
	case !ok:
		return "", "", fmt.Errorf("%w: authorization token has no user:password separator", errMalformed)
	case user == "":
		return "", "", fmt.Errorf("%w: authorization token has an empty user name", errMalformed)
	case password == "":
		return "", "", fmt.Errorf("%w: authorization token has an empty password", errMalformed)
	}
	return user, password, nil
}

// clampExpiry returns the expiry to plan with: ECR's value when plausible,
// otherwise now + refresher.TokenLifetime (clock skew; emulators such as moto
// always answer 2015-01-01).
func clampExpiry(exp *time.Time, now time.Time) (time.Time, bool) {
	if exp == nil || !exp.After(now) || exp.After(now.Add(refresher.TokenLifetime+5*time.Minute)) {
		return now.Add(refresher.TokenLifetime), true
	}
	return *exp, false
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
