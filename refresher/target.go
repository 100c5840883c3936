package refresher

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// Token is a decoded registry login: what one host's credential holds.
type Token struct {
	Host       string // where the credential is written: the registry host, or ECR_PROXY_HOST
	ECRHost    string // the host ECR named (proxyEndpoint)
	RegistryID string // the account id, from the host's first label
	Region     string
	Username   string
	Password   string
	FetchedAt  time.Time
	ExpiresAt  time.Time // as used: a implausible expiry is replaced by FetchedAt + TokenLifetime
	// Identity is whose token it is: "" for the daemon's own AWS identity, or
	// the role a tenant named (see Scope.Identity).
	Identity string
}

// TokenLifetime is how long ECR login tokens live.
const TokenLifetime = 12 * time.Hour

// String never prints the password.
func (t Token) String() string {
	return fmt.Sprintf("{host:%s region:%s username:%s password:REDACTED expires_at:%s}", t.Host, t.Region, t.Username, t.ExpiresAt.Format(time.RFC3339))
}

// GoString keeps %#v from printing the password too.
func (t Token) GoString() string { return t.String() }

// Scope is one place credentials are written (a Rancher 1.x environment, a
// Rancher 2.x project, a Kubernetes namespace, a consumer's Secret), with the
// name used in logs and /readyz.
type Scope struct {
	Name string
	// Group names the scope in metrics and summaries unless per-scope metrics
	// are asked for: the target kind for scopes that come and go with the
	// cluster (namespaces, consumers), the scope's own name for configured ones.
	// Empty means Name.
	Group string
	// Identity is the AWS identity whose tokens the scope holds: "" for the
	// daemon's own, else a role ARN that Refresher.Sources resolves (or refuses).
	Identity string
	Target   Target
}

// Target is what one kind of place answers: which objects of a scope should
// hold which tokens. It plans; the refresher applies. Each kind lives in its
// own package under targets/ and owns its platform's rules.
type Target interface {
	// Plan reads what the scope holds and returns the writes that make it hold
	// want.Tokens, and the hosts it cannot hold there. An error means the scope
	// could not be read at all: every host of want.Tokens fails with it.
	Plan(ctx context.Context, want Input) (Plan, error)
}

// Input is what a Target plans with.
type Input struct {
	// Tokens are the scope's tokens, one per host, all in hand and unexpired.
	Tokens []Token
	// Managed reports whether a host is one this process writes (any identity,
	// this run's tokens or earlier ones): an object holding only such hosts is
	// its own to rewrite whole; one holding any other host never is.
	Managed func(host string) bool
	// Log is the scope's logger, for what the plan notices (a credential
	// shared with hosts of others). Outcomes of writes are logged by the
	// refresher.
	Log logrus.FieldLogger
	// TakeBack asks the target to take out of the objects this process may
	// rewrite every managed host Tokens lack: set while the scope's identity
	// is refused (Tokens is then empty: the scope gets no credential at all),
	// and until the scope is first written in full with its identity (a new
	// scope, or one whose identity changed, may hold another identity's
	// tokens). Otherwise a managed host without a token is kept: its token
	// may only be late.
	TakeBack bool
}

// Plan is what a scope should hold.
type Plan struct {
	Writes []Write
	// Failures are hosts the scope cannot hold, with why (no registry and
	// AUTO_CREATE off, a Secret of that name that is someone else's).
	Failures []Failure
}

// Failure is a host that cannot be written into a scope.
type Failure struct {
	Host string
	Err  error
}

// Write is one object made to hold some tokens: a registry credential, a
// dockerCredential, a Secret.
type Write struct {
	// What the object is, for log lines: "registry credential", "secret".
	What string
	// Written, when set, is the line a successful write logs (with a result
	// field), e.g. "secret written"; else What and the result ("registry
	// credential updated").
	Written string
	// Object identifies it in its scope, e.g. "team-a/ecr-credentials". The
	// refresher remembers what it last wrote there.
	Object string
	// Tokens are every host the object holds after the write; each (host,
	// scope) pair is booked with the write's outcome.
	Tokens []Token
	// Detail is what else decides the content besides the tokens (a key's
	// spelling, the labels set), hashed with them.
	Detail string
	// Stale is set when the platform shows the object holds something other
	// than what this process last wrote there: it is written even if remembered.
	Stale bool
	// Action is the planned result, ResultCreated or ResultUpdated, as a dry
	// run reports it when Check is nil.
	Action Result
	// Apply writes the object and returns its result (ResultUnchanged when the
	// platform held exactly that already).
	Apply func(ctx context.Context) (Result, error)
	// Check, when set, asks the platform what Apply would do without writing
	// (Kubernetes' server-side dry run), so a dry run meets the same refusals.
	Check func(ctx context.Context) (Result, error)
	// Fields are added to the write's log lines.
	Fields logrus.Fields
}

// Result is what a write did.
type Result string

// Results of a write, as logs and writes_total name them.
const (
	ResultCreated   Result = "created"
	ResultUpdated   Result = "updated"
	ResultUnchanged Result = "unchanged"
	ResultFailed    Result = "failed"
)

// Content identifies what an object holds, passwords included (a hash: the
// passwords themselves are never kept per object).
type Content [sha256.Size]byte

// content is what w makes its object hold.
func (w *Write) content() Content {
	h := sha256.New()
	// Fed through one small buffer: converting each field to []byte would
	// copy every 2,400-character password at every write.
	var buf [256]byte
	field := func(s string) {
		for len(s) > 0 {
			n := copy(buf[:], s)
			h.Write(buf[:n])
			s = s[n:]
		}
		buf[0] = 0
		h.Write(buf[:1])
	}
	field(w.Detail)
	toks := slices.SortedFunc(slices.Values(w.Tokens), func(a, b Token) int { return strings.Compare(a.Host, b.Host) })
	for _, t := range toks {
		field(t.Host)
		field(t.Username)
		field(t.Password)
	}
	var c Content
	h.Sum(c[:0])
	return c
}
