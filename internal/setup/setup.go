// Package setup is the seam between the daemon's wiring and each kind of
// target: a Kind declares its settings (env vars and flags, with defaults and
// help), validates them, and builds its part of the daemon. The wiring
// (internal/app) holds the one table of kinds, so a new kind of target is one
// package and one entry there.
package setup

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// Setting is one configurable value: an environment variable and the flag
// named after it (a flag wins over the environment).
type Setting struct {
	// Env is the variable, e.g. KUBE_NAMESPACES.
	Env string
	// Flag is the flag's name without dashes; empty: Env lowercased with
	// underscores turned into dashes (--kube-namespaces).
	Flag string
	// Default is the value when neither is set.
	Default string
	// DefaultHelp is what --help and the README say when Default is empty:
	// "required", or what the empty value means ("all interfaces"). Empty: "none".
	DefaultHelp string
	// Usage is the one-line help.
	Usage string
	// Alias is read when Env is unset (PLATFORM_URL for CATTLE_URL).
	Alias string
	// Bool settings take no argument as flags.
	Bool bool
	// Secret values are never logged (REDACTED in the start line).
	Secret bool
	// FlagOnly settings have no environment variable (--demo, --version).
	FlagOnly bool
	// File adds the setting <Env>_FILE (flag --<flag>-file): a file holding
	// the value, trailing newline trimmed, which wins over Env. Docker and
	// Kubernetes hand secrets over as files.
	File bool
}

// Section is a group of settings as --help shows it: a mode (Rancher 1.x,
// Rancher 2.x, Kubernetes) or the settings every mode shares.
type Section struct {
	// Title names it, e.g. "Kubernetes namespaces".
	Title string
	// Requires says what turns the mode on and what it needs, in a line.
	Requires string
	Settings []Setting
	// Notes are lines --help prints after the settings: the forms a value
	// takes, what the mode does unasked.
	Notes []string
}

// Values are the settings as parsed (flags over environment over defaults),
// and the problems found in them. Every problem names the setting.
type Values interface {
	// Get returns a setting's value, trimmed of spaces.
	Get(env string) string
	// IsSet reports whether the setting was given (by flag, environment or
	// alias), not defaulted.
	IsSet(env string) bool
	// Bool, Duration and List convert a value, reporting a bad one.
	Bool(env string) bool
	Duration(env string) time.Duration
	List(env string) []string
	// Problem reports a problem with a setting; the message names where the
	// value came from (the flag, alias or variable) and is prefixed with it.
	Problem(env, format string, args ...any)
	// Warn records a problem the configuration survives, logged once at start.
	Warn(format string, args ...any)
}

// Deps are what the wiring hands every kind: nothing in it touches the
// network until used.
type Deps struct {
	Log       logrus.FieldLogger
	Metrics   prometheus.Registerer
	UserAgent string
	// DryRun is --dry-run: parts plan and read, never write.
	DryRun bool
	// Kubernetes returns the configuration of the cluster the daemon runs in
	// or KUBECONFIG names, and the namespace it is in; made once and shared.
	Kubernetes func() (*rest.Config, string, error)
	// KubeQPS and KubeBurst are KUBE_API_QPS and KUBE_API_BURST, for a
	// Kubernetes client a part builds itself (through Rancher's proxy); 0
	// is the client's default.
	KubeQPS   float32
	KubeBurst int
}

// Part is what a kind adds to the daemon.
type Part struct {
	// Scopes are written from the first run on.
	Scopes []refresher.Scope
	// Discover, when set, finds scopes anew at every full run and on Wake.
	Discover func(ctx context.Context) ([]refresher.Scope, error)
	// Start, when set, runs what watches the platform (informers) until ctx is
	// done, pushing scopes into r with AddScope and RemoveScope. It returns
	// once the first listing is done, or with why it could not be.
	Start func(ctx context.Context, r *refresher.Refresher) error
	// Lead, when set, runs beside the refresher while this replica writes
	// (ServiceAccount patches), until ctx is done.
	Lead func(ctx context.Context)
	// Empty, when set, says why the part has no scope right now ("namespace
	// selector team=a matches no namespace"); "" when it has some.
	Empty func() string
	// Fields describe the part in the start line; never a secret.
	Fields logrus.Fields
}

// Kind is one kind of target, as the daemon's table registers it.
type Kind struct {
	Section Section
	// More are further sections of the kind, one per mode it has beyond the
	// first (Rancher 2.x after Rancher 1.x); --help shows each after Section.
	More []Section
	// On reports whether the settings turn this kind on.
	On func(v Values) bool
	// Build validates the kind's settings, reporting every problem through
	// v.Problem, and builds its part (nil when the problems leave nothing to
	// build). It touches no network.
	Build func(v Values, d Deps) (*Part, error)
}

// Counted passes problems on to Values and counts them, so a Build can tell
// whether its settings held any before it builds.
type Counted struct {
	Values
	// N is how many problems were reported through it.
	N int
}

// Problem reports a problem with a setting, counting it.
func (c *Counted) Problem(env, format string, args ...any) {
	c.N++
	c.Values.Problem(env, format, args...)
}
