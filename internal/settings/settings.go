// Package settings reads the daemon's settings the way its users give them:
// defaults, then the environment (an alias when a variable is unset, a
// <name>_FILE variant over the plain value), then the flags, and reports every
// problem at once, each naming where its value came from. It implements
// setup.Values and prints --help by mode. The settings themselves are
// declared by the wiring and by each kind of target (internal/setup).
package settings

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/setup"
)

// ErrHelp is returned by Parse for -h and -help, which ask for the help.
var ErrHelp = flag.ErrHelp

// Expand returns the settings of sections in order, each File setting
// followed by its <Env>_FILE setting.
func Expand(sections []setup.Section) []setup.Setting {
	var out []setup.Setting
	for _, sec := range sections {
		for _, s := range sec.Settings {
			out = append(out, s)
			if s.File {
				out = append(out, fileSetting(s))
			}
		}
	}
	return out
}

// fileSetting is the <Env>_FILE setting of s.
func fileSetting(s setup.Setting) setup.Setting {
	f := setup.Setting{Env: s.Env + "_FILE", Usage: "file holding the value of " + s.Env + ", trailing newline trimmed (wins over " + s.Env + ")"}
	if s.Flag != "" {
		f.Flag = s.Flag + "-file"
	}
	return f
}

// FlagName is the flag of s, without dashes.
func FlagName(s setup.Setting) string {
	if s.Flag != "" {
		return s.Flag
	}
	return strings.ReplaceAll(strings.ToLower(s.Env), "_", "-")
}

// DefaultHelp is what --help and the README say s defaults to.
func DefaultHelp(s setup.Setting) string {
	return cmp.Or(s.Default, s.DefaultHelp, "none")
}

// Values are parsed settings; *Values implements setup.Values.
type Values struct {
	list     []setup.Setting
	index    map[string]int    // Env → position in list
	raw      map[string]string // Env → value, untrimmed
	set      map[string]bool   // given by flag, environment, alias, file or override
	from     map[string]string // Env → where its value came from, when not Env itself
	problems []problem
	warnings []string
}

var _ setup.Values = (*Values)(nil)

type problem struct {
	at  int // position of the setting, for a stable order
	msg string
}

// rawValue is a flag.Value that stores into a map; bool ones take no argument.
type rawValue struct {
	v      *Values
	env    string
	isBool bool
}

func (r rawValue) String() string {
	if r.v == nil {
		return ""
	}
	return r.v.raw[r.env]
}
func (r rawValue) Set(s string) error { r.v.raw[r.env], r.v.set[r.env] = s, true; return nil }
func (r rawValue) IsBoolFlag() bool   { return r.isBool }

// Parse reads the settings of sections: defaults, then getenv (a setting's
// Alias when its variable is unset), then the flags in args, then override
// (the demo's own settings); a File setting's <Env>_FILE, from wherever,
// wins over the plain value. Only a command line that cannot be read is an
// error here (ErrHelp for -h); problems with values are collected, and Err
// returns them.
func Parse(sections []setup.Section, args []string, getenv func(string) string, override map[string]string) (*Values, error) {
	v := &Values{list: Expand(sections), index: map[string]int{}, raw: map[string]string{}, set: map[string]bool{}, from: map[string]string{}}
	for i, s := range v.list {
		if _, dup := v.index[s.Env]; dup {
			panic("settings: " + s.Env + " is declared twice")
		}
		v.index[s.Env] = i
		v.raw[s.Env] = s.Default
		if s.FlagOnly {
			continue
		}
		if e := getenv(s.Env); e != "" {
			v.raw[s.Env], v.set[s.Env] = e, true
		} else if a := getenv(s.Alias); s.Alias != "" && a != "" {
			v.raw[s.Env], v.set[s.Env], v.from[s.Env] = a, true, s.Alias
		}
	}
	fs := flag.NewFlagSet("rancher-ecr-credentials", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	envOf := map[string]string{}
	for _, s := range v.list {
		envOf[FlagName(s)] = s.Env
		fs.Var(rawValue{v, s.Env, s.Bool}, FlagName(s), s.Usage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, ErrHelp
		}
		return nil, fmt.Errorf("command line: %w (see --help)", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("command line: unexpected argument %q (settings are flags or environment variables, see --help)", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { v.from[envOf[f.Name]] = "--" + f.Name + " (" + envOf[f.Name] + ")" })
	for env, val := range override {
		if _, ok := v.index[env]; !ok {
			panic("settings: override of undeclared " + env)
		}
		v.raw[env], v.set[env] = val, val != ""
		delete(v.from, env)
	}
	v.readFiles()
	return v, nil
}

// readFiles replaces each File setting's value by its file's, when named.
func (v *Values) readFiles() {
	for _, s := range v.list {
		f := s.Env + "_FILE"
		if !s.File || strings.TrimSpace(v.raw[f]) == "" {
			continue
		}
		path := strings.TrimSpace(v.raw[f])
		b, err := os.ReadFile(path)
		if err != nil {
			if u := errors.Unwrap(err); u != nil {
				err = u
			}
			v.Problem(f, "cannot read %s: %v", path, err)
			continue
		}
		v.raw[s.Env], v.set[s.Env], v.from[s.Env] = strings.TrimRight(string(b), "\r\n"), true, v.source(f)
	}
}

func (v *Values) at(env string) int {
	i, ok := v.index[env]
	if !ok {
		panic("settings: " + env + " is not declared")
	}
	return i
}

// source names where env's value came from: a flag, an alias, a file, or env.
func (v *Values) source(env string) string { return cmp.Or(v.from[env], env) }

// Get returns a setting's value, trimmed of spaces.
func (v *Values) Get(env string) string {
	v.at(env)
	return strings.TrimSpace(v.raw[env])
}

// IsSet reports whether the setting was given, not defaulted.
func (v *Values) IsSet(env string) bool {
	v.at(env)
	return v.set[env]
}

// Bool reads a true/false setting, reporting any other value.
func (v *Values) Bool(env string) bool {
	b, err := strconv.ParseBool(v.Get(env))
	if err != nil {
		v.Problem(env, "%q is not true or false", v.Get(env))
	}
	return b
}

// Duration reads a positive Go duration, reporting any other value.
func (v *Values) Duration(env string) time.Duration {
	d, err := time.ParseDuration(v.Get(env))
	if err != nil || d <= 0 {
		v.Problem(env, "%q is not a positive Go duration such as 30s or 15m", v.Get(env))
		return 0
	}
	return d
}

// List splits a comma list, dropping empty entries.
func (v *Values) List(env string) []string {
	var out []string
	for _, p := range strings.Split(v.Get(env), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Problem reports a problem with a setting, prefixed with where its value
// came from; the same problem reported twice is kept once.
func (v *Values) Problem(env, format string, args ...any) {
	p := problem{at: v.at(env), msg: v.source(env) + ": " + fmt.Sprintf(format, args...)}
	if !slices.Contains(v.problems, p) {
		v.problems = append(v.problems, p)
	}
}

// Warn records a problem the configuration survives.
func (v *Values) Warn(format string, args ...any) {
	if w := fmt.Sprintf(format, args...); !slices.Contains(v.warnings, w) {
		v.warnings = append(v.warnings, w)
	}
}

// Err joins every problem reported, one line each, in the order of the
// settings (the order --help lists them), or nil.
func (v *Values) Err() error {
	ps := slices.Clone(v.problems)
	slices.SortStableFunc(ps, func(a, b problem) int { return cmp.Compare(a.at, b.at) })
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = errors.New(p.msg)
	}
	return errors.Join(errs...)
}

// Warnings are the warnings recorded, in order.
func (v *Values) Warnings() []string { return slices.Clone(v.warnings) }
