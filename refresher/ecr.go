package refresher

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/smithy-go"
)

// TokenLifetime is how long ECR login tokens live. An expiresAt in the past or
// further than this ahead (clock skew, emulators such as moto, which always answer
// 2015-01-01) is replaced by fetch time + TokenLifetime.
const TokenLifetime = 12 * time.Hour

// ECRAPI is the one ECR call the refresher makes; *ecr.Client implements it.
type ECRAPI interface {
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, optFns ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
}

var _ ECRAPI = (*ecr.Client)(nil)

// Source is one GetAuthorizationToken call: a region and the registry ids asked
// for there (none: the caller's own registry).
type Source struct {
	Region      string
	RegistryIDs []string
	Client      ECRAPI
	// Timeout bounds one call, the SDK's own retries included, so one stalled
	// region cannot hold up the others; DefaultCallTimeout when zero.
	Timeout time.Duration
}

// DefaultCallTimeout bounds one GetAuthorizationToken call, retries included.
const DefaultCallTimeout = 30 * time.Second

// label names a source in logs and errors when no host is known yet.
func (s Source) label() string {
	if len(s.RegistryIDs) == 0 {
		return "default registry in " + s.Region
	}
	return "registries " + strings.Join(s.RegistryIDs, ",") + " in " + s.Region
}

// Token is a decoded ECR login for one registry.
type Token struct {
	Host       string // where the credential is written: the registry host, or ECR_PROXY_HOST
	ECRHost    string // the host from proxyEndpoint
	RegistryID string // the account id, from the host's first label
	Region     string
	Username   string
	Password   string
	FetchedAt  time.Time
	ExpiresAt  time.Time // as used: clamped, see TokenLifetime
	// Clamped is true when ECR's expiresAt was implausible and ExpiresAt was derived.
	Clamped bool

	source int // index of the Source it came from
}

// String never prints the password.
func (t Token) String() string {
	return fmt.Sprintf("{host:%s region:%s username:%s password:REDACTED expires_at:%s}", t.Host, t.Region, t.Username, t.ExpiresAt.Format(time.RFC3339))
}

// GoString keeps %#v from printing the password too.
func (t Token) GoString() string { return t.String() }

// errMalformed marks an ECR answer that cannot be used; asking again soon will
// not fix it.
var errMalformed = Permanent(errors.New("malformed ecr answer"))

// awsError answers for an AWS SDK error whether retrying soon can help: what the
// SDK itself retries (throttling codes, 5xx, transient codes) and network
// errors are temporary; other client errors, modelled or not (AccessDenied, an
// unknown registry id), are not.
type awsError struct{ err error }

func (e awsError) Error() string { return describeAWSError(e.err) }
func (e awsError) Unwrap() error { return e.err }

func (e awsError) Temporary() bool {
	var ne net.Error
	if errors.Is(e.err, context.DeadlineExceeded) || errors.Is(e.err, context.Canceled) || errors.As(e.err, &ne) {
		return true
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

// NormalizeHost returns the lowercased host[:port] of a registry address such as
// "https://111122223333.dkr.ecr.us-east-1.amazonaws.com/", "Host:5000/path",
// "[::1]:5000" or "host". It fails for addresses with no usable host: empty
// labels ("x..", "a..b"), labels that are only punctuation or start or end
// with "-", an IPv6 address outside brackets, a port outside 1-65535.
//
// It is idempotent: NormalizeHost(h) == h for every h it returns (one trailing
// dot is dropped, the port loses leading zeros, IPv6 is written canonically).
func NormalizeHost(addr string) (string, error) {
	a := strings.TrimSpace(addr)
	if strings.Contains(a, "://") {
		u, err := url.Parse(a)
		if err != nil {
			return "", errors.New("not a URL")
		}
		a = u.Host
	} else if i := strings.IndexAny(a, "/?#"); i >= 0 {
		a = a[:i]
	}
	a = strings.ToLower(a)
	if a == "" {
		return "", errors.New("no host")
	}
	var host, port string
	hasPort := false
	if strings.HasPrefix(a, "[") {
		end := strings.Index(a, "]")
		if end < 0 {
			return "", errors.New("unclosed [ in host")
		}
		ip, err := netip.ParseAddr(a[1:end])
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return "", errors.New("invalid IPv6 address in brackets")
		}
		host = "[" + ip.String() + "]"
		if rest := a[end+1:]; rest != "" {
			if rest[0] != ':' {
				return "", errors.New("invalid character after ]")
			}
			port, hasPort = rest[1:], true
		}
	} else {
		host = a
		if i := strings.LastIndex(a, ":"); i >= 0 {
			host, port, hasPort = a[:i], a[i+1:], true
		}
		if strings.Contains(host, ":") {
			return "", errors.New("an IPv6 address must be in brackets, e.g. [::1]:5000")
		}
		host = strings.TrimSuffix(host, ".")
		if err := checkHostname(host); err != nil {
			return "", err
		}
	}
	if !hasPort {
		return host, nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || strings.Trim(port, "0123456789") != "" || n < 1 || n > 65535 {
		return "", errors.New("invalid port")
	}
	if port[0] != '0' && len(a) == len(host)+1+len(port) && strings.HasPrefix(a, host) {
		return a, nil // already canonical: no allocation (thousands per listing)
	}
	return host + ":" + strconv.Itoa(n), nil
}

// checkHostname accepts dot-separated labels of a-z, 0-9, "-" and "_" (Docker
// accepts underscores in registry names), each with a letter or digit and not
// starting or ending with "-".
func checkHostname(host string) error {
	if host == "" {
		return errors.New("no host")
	}
	if len(host) > 253 {
		return errors.New("host longer than 253 characters")
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" {
			return errors.New("empty label in host")
		}
		alnum := false
		for _, r := range label {
			switch {
			case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
				alnum = true
			case r == '-' || r == '_':
			default:
				return fmt.Errorf("invalid character %q in host", r)
			}
		}
		if !alnum || label[0] == '-' || label[len(label)-1] == '-' || len(label) > 63 {
			return fmt.Errorf("invalid label %q in host", label)
		}
	}
	return nil
}

// fetched is what one GetAuthorizationToken call gave.
type fetched struct {
	toks []Token
	bad  []error // unusable entries and requested ids with no entry: they fail the source
	err  error   // the call itself failed: every pair of the source fails
	// skipped summarises entries that were not asked for, or repeated, in one
	// line; empty when there were none.
	skipped string
}

// fetch makes one GetAuthorizationToken call, bounded by the source's Timeout
// (the SDK's own retries included), and decodes the entries asked for: ECR
// registry hosts of the requested ids in this region (docs/ecr.md#registry-hosts)
// or, with no ids, of one account (the caller's own). Anything else, such as a
// foreign proxyEndpoint, and repeats of a host are skipped, never written.
func (s Source) fetch(ctx context.Context, now time.Time) fetched {
	in := &ecr.GetAuthorizationTokenInput{}
	if len(s.RegistryIDs) > 0 {
		// Deprecated in the model because it no longer narrows the token's
		// permissions, but it still decides which proxyEndpoints come back: one
		// registry host per id, which is what AWS_ECR_REGISTRY_IDS asks for.
		//lint:ignore SA1019 the ids select the registry hosts returned, see above
		in.RegistryIds = s.RegistryIDs
	}
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(s.Timeout, DefaultCallTimeout))
	defer cancel()
	out, err := s.Client.GetAuthorizationToken(ctx, in)
	if err != nil {
		return fetched{err: fmt.Errorf("ecr get authorization token (%s): %w", s.label(), awsError{err})}
	}
	var f fetched
	var sk skipped
	wanted := map[string]bool{}
	for _, id := range s.RegistryIDs {
		wanted[id] = true
	}
	account := "" // with no ids: the one account accepted, the first seen
	seen := map[string]bool{}
	for i, d := range out.AuthorizationData {
		host, err := NormalizeHost(deref(d.ProxyEndpoint))
		if err != nil {
			sk.foreign(fmt.Sprintf("entry %d: proxyEndpoint %v", i, err))
			continue
		}
		id, region, ok := parseRegistryHost(host)
		switch {
		case !ok || region != s.Region:
			sk.foreign(host)
			continue
		case len(wanted) > 0 && !wanted[id], len(wanted) == 0 && account != "" && id != account:
			sk.foreign(host)
			continue
		case seen[host]:
			sk.repeated++
			continue
		}
		account, seen[host] = id, true
		user, pw, err := decodeToken(deref(d.AuthorizationToken))
		if err != nil {
			f.bad = append(f.bad, fmt.Errorf("ecr answer for %s: %w", host, err))
			continue
		}
		t := Token{Host: host, ECRHost: host, RegistryID: id, Region: s.Region,
			Username: user, Password: pw, FetchedAt: now}
		t.ExpiresAt, t.Clamped = clampExpiry(d.ExpiresAt, now)
		f.toks = append(f.toks, t)
	}
	// An id whose entry was unusable is reported as such above, not as missing.
	got := map[string]bool{}
	for h := range seen {
		got[strings.SplitN(h, ".", 2)[0]] = true
	}
	for _, id := range s.RegistryIDs {
		if !got[id] {
			f.bad = append(f.bad, fmt.Errorf("ecr returned no token for registry %s in %s", id, s.Region))
		}
	}
	if len(s.RegistryIDs) == 0 && len(seen) == 0 {
		f.bad = append(f.bad, fmt.Errorf("ecr returned no token (%s)", s.label()))
	}
	f.skipped = sk.String()
	return f
}

// skipped counts the authorizationData entries a call did not ask for, keeping
// a few examples, so one line reports them all.
type skipped struct {
	n, repeated int
	examples    []string
}

const skippedExamples = 3

func (sk *skipped) foreign(what string) {
	sk.n++
	if len(sk.examples) < skippedExamples {
		sk.examples = append(sk.examples, bounded(what, 80))
	}
}

func (sk skipped) String() string {
	var parts []string
	if sk.n > 0 {
		parts = append(parts, fmt.Sprintf("%d entries not asked for (e.g. %s)", sk.n, strings.Join(sk.examples, ", ")))
	}
	if sk.repeated > 0 {
		parts = append(parts, fmt.Sprintf("%d repeated hosts", sk.repeated))
	}
	return strings.Join(parts, "; ")
}

// clampExpiry returns the expiry to plan with: ECR's value when plausible,
// otherwise now + TokenLifetime.
func clampExpiry(exp *time.Time, now time.Time) (time.Time, bool) {
	if exp == nil || !exp.After(now) || exp.After(now.Add(TokenLifetime+5*time.Minute)) {
		return now.Add(TokenLifetime), true
	}
	return *exp, false
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ecrErrorCode names an ECR failure for the ecr_errors_total metric: the AWS
// error code when there is one (a short identifier, never the message), else
// what kind of failure it was.
func ecrErrorCode(err error) string {
	var ae smithy.APIError
	var ne net.Error
	switch {
	case errors.As(err, &ae) && validCode(ae.ErrorCode()):
		return ae.ErrorCode()
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &ne):
		return "network"
	case errors.Is(err, errMalformed):
		return "unusable"
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
