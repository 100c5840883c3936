package main

import (
	"fmt"
	"io"
	"strings"
)

// helpDefault is what --help and the README say a setting defaults to.
func (s setting) helpDefault() string {
	switch {
	case s.def != "":
		return s.def
	case s.defHelp != "":
		return s.defHelp
	}
	return "none"
}

// writeHelp lists every flag with its variable and its one default, then the
// URL and key forms, what Rancher 2.x does regardless of AUTO_CREATE, and the
// exit codes.
func writeHelp(w io.Writer) {
	fmt.Fprintf(w, "rancher-ecr-credentials keeps registry credentials for Amazon ECR fresh in Rancher and Kubernetes.\n\n")
	fmt.Fprintf(w, "Usage:\n  rancher-ecr-credentials [flags]\n"+
		"  rancher-ecr-credentials healthcheck [--listen-address A] [--listen-port N]   (GET /healthz; exit 0 or 1)\n"+
		"  rancher-ecr-credentials version   (version, commit, build date, Go version; also --version)\n\n")
	fmt.Fprintf(w, "Every flag has an environment variable; a flag wins over the environment.\n\n")
	for _, s := range settings() {
		arg := " VALUE"
		if s.isBool {
			arg = ""
		}
		env := "env " + s.env
		switch {
		case s.noEnv:
			env = "flag only"
		case s.alias != "":
			env += ", or " + s.alias + " when " + s.env + " is unset"
		}
		def := "default " + s.helpDefault()
		if strings.HasPrefix(s.defHelp, "required") {
			def = s.defHelp
		}
		fmt.Fprintf(w, "  --%s%s\n      %s (%s; %s)\n", s.flagName(), arg, s.usage, env, def)
	}
	fmt.Fprintf(w, `
CATTLE_URL forms:
  Rancher 1.x  https://rancher.example.com            (the same as …/v2-beta)
               https://rancher.example.com/v1, …/v2-beta
               https://rancher.example.com/v2-beta/projects/1a5   (one environment; also …/v1/projects/1a5)
  Rancher 2.x  https://rancher.example.com/v3         (with RANCHER_PROJECTS)
               https://rancher.example.com/v3/project/c-abcde:p-fghij   (one project)
  A path before the version (a proxy prefix) is kept: https://proxy.example.com/rancher/v2-beta.

Rancher keys:
  An API key pair: CATTLE_ACCESS_KEY=<access key> CATTLE_SECRET_KEY=<secret key>.
  Rancher 2.x also takes a whole bearer token as the secret key alone:
    CATTLE_ACCESS_KEY unset, CATTLE_SECRET_KEY=token-xxxxx:yyyyyyyy
  PLATFORM_URL, PLATFORM_ACCESS_KEY, PLATFORM_SECRET_KEY (the Rancher 1.6 fork's names) are read when the
  CATTLE_* name is unset.

Rancher 2.x writes a dockerCredential into every project that lacks one for an ECR host, whatever AUTO_CREATE
says (AUTO_CREATE decides only whether Rancher 1.x registries are created).

Limits: REFRESH_SCHEDULE runs at least %s apart, RETRY_MIN_INTERVAL is at least %s and RETRY_MAX_INTERVAL at
least %s; LOG_LEVEL panic and fatal are refused (they would hide errors).

The AWS SDK's own variables (AWS_ACCESS_KEY_ID, AWS_PROFILE, AWS_WEB_IDENTITY_TOKEN_FILE,
AWS_ENDPOINT_URL_ECR, AWS_ENDPOINT_URL_STS, ...) and HTTPS_PROXY / NO_PROXY are honoured as they are.

Exit codes:
  0  stopped by SIGTERM or SIGINT; --once or --dry-run wrote (or planned) every registry everywhere; --help, --version
  1  --once or --dry-run left something unwritten (each failure is logged); the healthcheck found no healthy daemon
  2  bad configuration: one line per problem, naming the variable, before any network call
`, MinRefreshGap, MinRetryMinInterval, MinRetryMaxInterval)
}
