// Package buildinfo says which source a binary was built from: the values the
// release build stamps into package main, else what the Go toolchain records.
package buildinfo

import (
	"cmp"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Stamp is what the release build sets in package main with
//
//	-ldflags "-X main.version=v1.2.3 -X main.commit=<sha> -X main.date=<RFC 3339>"
//
// (the Dockerfile does); main hands it to the wiring. Empty fields were not stamped.
type Stamp struct {
	Version, Commit, Date string
}

// Info says which source a binary was built from.
type Info struct {
	Version   string // release version, or "(devel)"
	Revision  string // VCS commit, or "unknown"
	Date      string // build date (stamped) or commit time (from Go's VCS stamp), or "unknown"
	GoVersion string
	Platform  string // GOOS/GOARCH
	Modified  bool   // built from a checkout with uncommitted changes
	Stamped   bool   // version set by -ldflags (a release build)
}

// Current is this binary's Info, preferring s.
func Current(s Stamp) Info {
	bi, _ := debug.ReadBuildInfo()
	return Resolve(s, bi)
}

// Resolve prefers the values stamped with -ldflags and falls back to what the
// Go toolchain records by itself (`go build` in a git checkout records
// vcs.revision, vcs.time and vcs.modified; `go run` and `go test` do not):
// https://pkg.go.dev/runtime/debug#BuildSetting
func Resolve(s Stamp, bi *debug.BuildInfo) Info {
	b := Info{Version: s.Version, Revision: s.Commit, Date: s.Date, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH, Stamped: s.Version != ""}
	if bi != nil {
		b.GoVersion = cmp.Or(bi.GoVersion, b.GoVersion)
		var vcsRev, vcsTime, goos, goarch string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				vcsRev = s.Value
			case "vcs.time":
				vcsTime = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			case "GOOS":
				goos = s.Value
			case "GOARCH":
				goarch = s.Value
			}
		}
		if goos != "" && goarch != "" {
			b.Platform = goos + "/" + goarch
		}
		b.Revision = cmp.Or(b.Revision, vcsRev)
		b.Date = cmp.Or(b.Date, vcsTime)
		if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version // a pseudo-version such as v0.0.0-20250101120000-abcdef012345+dirty
		}
	}
	b.Version = cmp.Or(b.Version, "(devel)")
	b.Revision = cmp.Or(b.Revision, "unknown")
	b.Date = cmp.Or(b.Date, "unknown")
	return b
}

// String is the one-line form used in the start-up log line and the User-Agent.
func (b Info) String() string { return b.Version }

// UserAgent is what the daemon's clients send: its name and version.
func (b Info) UserAgent() string { return "rancher-ecr-credentials/" + b.Version }

// Write prints what `--version` and `version` print.
func Write(w io.Writer, b Info) {
	rev := b.Revision
	if b.Modified {
		rev += " (with uncommitted changes)"
	}
	fmt.Fprintf(w, "rancher-ecr-credentials %s\n  commit:  %s\n  built:   %s\n  go:      %s %s\n",
		b.Version, rev, b.Date, b.GoVersion, b.Platform)
	if !b.Stamped {
		fmt.Fprintln(w, "  note:    not a release build (no version stamped at build time);"+
			" the commit and date above come from Go's own VCS stamp when built with `go build` in a git checkout."+
			" Build with the Dockerfile, or add -ldflags \"-X main.version=… -X main.commit=… -X main.date=…\".")
	}
}

// Register adds rancher_ecr_credentials_build_info, a gauge that is always 1
// and carries the build in its labels, the usual *_build_info pattern:
// https://www.robustperception.io/exposing-the-software-version-to-prometheus/
func Register(reg prometheus.Registerer, b Info) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "rancher_ecr_credentials_build_info",
		Help: "Always 1; the labels say which build this process runs.",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.Revision, "build_date": b.Date,
			"goversion": b.GoVersion, "platform": b.Platform, "modified": fmt.Sprint(b.Modified)},
	}, func() float64 { return 1 }))
}
