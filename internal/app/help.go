package app

import (
	"fmt"
	"io"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/settings"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/setup"
)

// writeHelp prints the usage, the settings by mode (those every mode shares,
// then one section per kind of target with what it requires), the limits and
// the exit codes.
func writeHelp(w io.Writer, kinds []setup.Kind) {
	fmt.Fprintf(w, "rancher-ecr-credentials keeps registry credentials for Amazon ECR fresh in Rancher and Kubernetes.\n\n")
	fmt.Fprintf(w, "Usage:\n  rancher-ecr-credentials [flags]   (the daemon; --once: one run; --dry-run: plan only)\n"+
		"  rancher-ecr-credentials healthcheck [--listen-address A] [--listen-port N]   (GET /healthz; exit 0 or 1)\n"+
		"  rancher-ecr-credentials version   (version, commit, build date, Go version; also --version)\n"+
		"  rancher-ecr-credentials help      (this help; also --help)\n\n")
	fmt.Fprintf(w, "Every flag has an environment variable; a flag wins over the environment. The settings every mode\n"+
		"shares come first, then one section per kind of target: a kind is on when what it requires is set,\n"+
		"and several may be on at once.\n\n")
	settings.WriteSections(w, Sections(kinds))
	fmt.Fprintf(w, `Limits: REFRESH_SCHEDULE runs at least %s apart, RETRY_MIN_INTERVAL is at least %s and RETRY_MAX_INTERVAL at
least %s; LOG_LEVEL panic and fatal are refused (they would hide errors).

Exit codes:
  0  stopped by SIGTERM or SIGINT; --once or --dry-run wrote (or planned) every registry everywhere; help, version
  1  --once or --dry-run left something unwritten (each failure is logged); the healthcheck found no healthy daemon;
     the leader-election lease was lost
  2  bad configuration: one line per problem, naming the variable, before any network call
`, MinRefreshGap, MinRetryMinInterval, MinRetryMaxInterval)
}
