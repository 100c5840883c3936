package main

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
)

// badFunc reports one configuration problem about a variable.
type badFunc func(env, format string, args ...any)

// urlForms are the CATTLE_URL forms --help and the errors name.
const urlForms = "Rancher 1.x: https://<rancher>, …/v1, …/v2-beta, …/v1/projects/<environment id>, …/v2-beta/projects/<environment id>; " +
	"Rancher 2.x: https://<rancher>/v3, …/v3/project/<cluster id>:<project id>"

var (
	// envIDRE is a Cattle environment id: "1a" and a number.
	envIDRE = regexp.MustCompile(`^1a[0-9]+$`)
	// projectIDRE is a norman project id "<cluster>:<project>". Clusters are
	// "local", "c-xxxxx", or "c-m-xxxxxxxx" for clusters Rancher 2.6+ provisions.
	projectIDRE = regexp.MustCompile(`^(local|c(-[a-z0-9]+)+):p-[a-z0-9]+$`)
	portRE      = regexp.MustCompile(`^[0-9]{1,5}$`)
	// hostRE is a DNS name as LISTEN_ADDRESS may give it.
	hostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)
)

// parseCattleURL checks CATTLE_URL and says how to fix it: the scheme it lacks,
// the API version its path lacks, the /v3 URL Rancher 2.x project ids need.
func parseCattleURL(raw string, projects []string, bad badFunc) rancherapi.APIURL {
	const env = "CATTLE_URL"
	if raw == "" {
		bad(env, "required: the Rancher API URL, e.g. https://rancher.example.com/v2-beta (Rancher 1.x) or https://rancher.example.com/v3 (Rancher 2.x); or set KUBE_NAMESPACES / KUBE_NAMESPACE_SELECTOR to write into Kubernetes namespaces only")
		return rancherapi.APIURL{}
	}
	if !strings.Contains(raw, "://") {
		if strings.ContainsAny(raw, "@ ") { // may hold a password: not echoed
			bad(env, "has no scheme: start it with https:// (or http:// if Rancher answers plain HTTP)")
		} else {
			bad(env, "%q has no scheme: use https://%s (or http://%s if Rancher answers plain HTTP)", raw, raw, raw)
		}
		return rancherapi.APIURL{}
	}
	api, err := rancherapi.ParseURL(raw)
	if err == nil {
		err = checkURLPath(raw)
	}
	if notRancher2URL(raw, api, err, projects, bad) {
		return rancherapi.APIURL{}
	}
	if err != nil {
		bad(env, "%v", err)
		return rancherapi.APIURL{}
	}
	switch id := api.Project; {
	case id == "":
	case api.Rancher2 && !projectIDRE.MatchString(id):
		bad(env, "%q is not a Rancher 2.x project id such as c-abcde:p-fghij (local:p-xxxxx for the local cluster)", id)
	case !api.Rancher2 && !envIDRE.MatchString(id):
		bad(env, "%q is not a Rancher 1.x environment id such as 1a5", id)
	}
	return api
}

// checkURLPath refuses a path that names no API version. ParseURL reads it as a
// proxy prefix in front of /v2-beta, which turns a mistyped …/v2 into …/v2/v2-beta/.
func checkURLPath(raw string) error {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || strings.Trim(u.Path, "/") == "" {
		return nil // ParseURL said the rest
	}
	for _, s := range strings.Split(u.Path, "/") {
		if s := strings.ToLower(s); s == "v1" || s == "v2-beta" || s == "v3" {
			return nil
		}
	}
	host := u.Scheme + "://" + u.Host
	return fmt.Errorf("path %q names no API version: use %s/v2-beta (Rancher 1.x) or %s/v3 (Rancher 2.x), after any proxy prefix; the forms are %s",
		u.Path, host, host, urlForms)
}

// parseProjects reads RANCHER_PROJECTS: ids of the URL's Rancher version, or
// "all". An id listed twice is written once, with a warning.
func parseProjects(v string, api rancherapi.APIURL, bad badFunc) (ids []string, all bool, warnings []string) {
	const env = "RANCHER_PROJECTS"
	list := splitList(v)
	if len(list) == 1 && strings.EqualFold(list[0], "all") {
		return nil, true, nil
	}
	seen := map[string]bool{}
	var dups []string
	for _, p := range list {
		switch {
		case strings.EqualFold(p, "all"):
			bad(env, "\"all\" must stand alone")
		case seen[p]:
			if !slices.Contains(dups, p) {
				dups = append(dups, p)
			}
		case api.Rancher2 && !projectIDRE.MatchString(p):
			bad(env, "%q is not a Rancher 2.x project id such as c-abcde:p-fghij (local:p-xxxxx for the local cluster)", p)
		case !api.Rancher2 && api.Root != nil && !envIDRE.MatchString(p):
			bad(env, "%q is not a Rancher 1.x environment id such as 1a5", p)
		case api.Root == nil && !envIDRE.MatchString(p) && !projectIDRE.MatchString(p):
			bad(env, "%q is neither a Rancher 1.x environment id (1a5) nor a Rancher 2.x project id (c-abcde:p-fghij)", p)
		default:
			seen[p] = true
			ids = append(ids, p)
		}
	}
	if len(dups) > 0 {
		warnings = append(warnings, fmt.Sprintf("%s lists %s more than once: each is written once", env, strings.Join(dups, ", ")))
	}
	if api.Rancher2 && api.Project == "" && len(ids) == 0 && len(list) == 0 {
		bad(env, "required with a Rancher 2.x URL that names no project: list project ids (c-abcde:p-fghij) or all; or use CATTLE_URL …/v3/project/<project id>")
	}
	return ids, false, warnings
}

// parseListenAddress reads LISTEN_ADDRESS: an IP address or a host name, no port.
func parseListenAddress(v string, bad badFunc) string {
	v = strings.TrimSpace(v)
	ip := strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
	switch {
	case v == "":
		return ""
	case net.ParseIP(ip) != nil:
		return ip
	case hostRE.MatchString(v):
		return v
	}
	if h, p, err := net.SplitHostPort(v); err == nil && (net.ParseIP(h) != nil || hostRE.MatchString(h)) && portRE.MatchString(p) {
		bad("LISTEN_ADDRESS", "%q holds a port: set LISTEN_ADDRESS=%s and LISTEN_PORT=%s", v, h, p)
		return ""
	}
	bad("LISTEN_ADDRESS", "%q is not an IP address or host name, e.g. 127.0.0.1, ::1 or 0.0.0.0", v)
	return ""
}

// parseLogLevel reads LOG_LEVEL, refusing the levels that would hide errors.
func parseLogLevel(v string, bad badFunc) logrus.Level {
	l, err := logrus.ParseLevel(v)
	switch {
	case err != nil:
		bad("LOG_LEVEL", "%q is not one of debug, info, warn, error", v)
	case l < logrus.ErrorLevel:
		bad("LOG_LEVEL", "%q would hide every error: use error, or a more verbose level (warn, info, debug)", v)
	}
	return l
}

// checkSchedule parses REFRESH_SCHEDULE, refusing a schedule that runs more than
// once per MinRefreshGap, and names the fix for a bare duration.
func checkSchedule(spec string, bad badFunc) {
	const env = "REFRESH_SCHEDULE"
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		d, derr := time.ParseDuration(strings.TrimPrefix(spec, "every "))
		if derr == nil && d > 0 {
			bad(env, "invalid cron spec %q: a bare duration needs @every, e.g. REFRESH_SCHEDULE=\"@every %s\"", spec, strings.TrimPrefix(spec, "every "))
			return
		}
		bad(env, "invalid cron spec %q: %v (use 5 fields such as \"0 */6 * * *\", or \"@every 6h\")", spec, err)
		return
	}
	if gap := shortestGap(sched); gap < MinRefreshGap {
		bad(env, "%q runs every %s: use a schedule at least %s apart, e.g. \"@every 6h\" (tokens are refreshed before they expire whatever the schedule)", spec, gap, MinRefreshGap)
	}
}

// shortestGap is the shortest time between two runs of sched, looked for over
// a year of a 5-field spec's runs (cron's own search horizon is five years).
func shortestGap(sched cron.Schedule) time.Duration {
	if c, ok := sched.(cron.ConstantDelaySchedule); ok {
		return c.Delay
	}
	t := sched.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	end := t.AddDate(1, 0, 0)
	gap := time.Duration(1<<63 - 1)
	for i := 0; i < 4096 && t.Before(end) && !t.IsZero(); i++ {
		next := sched.Next(t)
		if next.IsZero() {
			break
		}
		gap = min(gap, next.Sub(t))
		if gap <= time.Minute { // a 5-field spec's finest step: no shorter gap to find
			break
		}
		t = next
	}
	return gap
}
