package buildinfo

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	vcs := &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "v0.0.0-20250102030405-0123456789ab+dirty"},
		Settings: []debug.BuildSetting{{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
			{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.time", Value: "2025-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"}}}
	tests := map[string]struct {
		version, commit, date string
		bi                    *debug.BuildInfo
		want                  Info
	}{
		"stamped release build": {"v1.2.3", "abcdef", "2025-06-01T00:00:00Z", vcs,
			Info{Version: "v1.2.3", Revision: "abcdef", Date: "2025-06-01T00:00:00Z", GoVersion: "go1.26.1", Platform: "linux/arm64", Modified: true, Stamped: true}},
		"go build in a checkout": {"", "", "", vcs,
			Info{Version: "v0.0.0-20250102030405-0123456789ab+dirty", Revision: "0123456789abcdef", Date: "2025-01-02T03:04:05Z", GoVersion: "go1.26.1", Platform: "linux/arm64", Modified: true}},
		"go run or go test": {"", "", "", &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "(devel)"}},
			Info{Version: "(devel)", Revision: "unknown", Date: "unknown", GoVersion: "go1.26.1"}},
		"no build info": {"", "", "", nil, Info{Version: "(devel)", Revision: "unknown", Date: "unknown"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := Resolve(Stamp{tt.version, tt.commit, tt.date}, tt.bi)
			if tt.want.GoVersion == "" { // from the running toolchain
				tt.want.GoVersion = got.GoVersion
			}
			if tt.want.Platform == "" {
				tt.want.Platform = got.Platform
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestWrite(t *testing.T) {
	t.Parallel()
	var o bytes.Buffer
	Write(&o, Info{Version: "v1.2.3", Revision: "abcdef", Date: "2025-06-01T00:00:00Z", GoVersion: "go1.26.1", Platform: "linux/amd64", Stamped: true})
	want := "rancher-ecr-credentials v1.2.3\n  commit:  abcdef\n  built:   2025-06-01T00:00:00Z\n  go:      go1.26.1 linux/amd64\n"
	if o.String() != want {
		t.Errorf("stamped:\n%s\nwant\n%s", o.String(), want)
	}
	o.Reset()
	Write(&o, Info{Version: "(devel)", Revision: "0123abc", Date: "unknown", GoVersion: "go1.26.1", Platform: "linux/amd64", Modified: true})
	for _, want := range []string{"(devel)", "0123abc (with uncommitted changes)", "not a release build", "-X main.version="} {
		if !strings.Contains(o.String(), want) {
			t.Errorf("unstamped output lacks %q:\n%s", want, o.String())
		}
	}
}

// The gauge carries the build in its labels.
func TestRegister(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	Register(reg, Info{Version: "v1.2.3", Revision: "abcdef", Date: "d", GoVersion: "go1.26.1", Platform: "linux/amd64"})
	want := `
# HELP rancher_ecr_credentials_build_info Always 1; the labels say which build this process runs.
# TYPE rancher_ecr_credentials_build_info gauge
rancher_ecr_credentials_build_info{build_date="d",goversion="go1.26.1",modified="false",platform="linux/amd64",revision="abcdef",version="v1.2.3"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "rancher_ecr_credentials_build_info"); err != nil {
		t.Error(err)
	}
}
