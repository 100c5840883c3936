package rancher

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/setup"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
)

// urlForms are the CATTLE_URL forms --help and the errors name.
const urlForms = "Rancher 1.x: https://<rancher>, …/v1, …/v2-beta, …/v1/projects/<environment id>, …/v2-beta/projects/<environment id>; " +
	"Rancher 2.x: https://<rancher>/v3, …/v3/project/<cluster id>:<project id>"

// environmentIDPattern is a Rancher 1.x (Cattle) environment id: "1a" and a
// number. Rancher 2.x project ids are rancherapi.ProjectIDPattern.
var environmentIDPattern = regexp.MustCompile(`^1a[0-9]+$`)

// parseCattleURL checks CATTLE_URL and says how to fix it: the scheme it lacks,
// the API version its path lacks, the /v3 URL Rancher 2.x project ids need.
func parseCattleURL(raw string, projects []string, v setup.Values) rancherapi.APIURL {
	const env = "CATTLE_URL"
	if raw == "" {
		v.Problem(env, "required: the Rancher API URL, e.g. https://rancher.example.com/v2-beta (Rancher 1.x) or https://rancher.example.com/v3 (Rancher 2.x)")
		return rancherapi.APIURL{}
	}
	if !strings.Contains(raw, "://") {
		if strings.ContainsAny(raw, "@ ") { // may hold a password: not echoed
			v.Problem(env, "has no scheme: start it with https:// (or http:// if Rancher answers plain HTTP)")
		} else {
			v.Problem(env, "%q has no scheme: use https://%s (or http://%s if Rancher answers plain HTTP)", raw, raw, raw)
		}
		return rancherapi.APIURL{}
	}
	api, err := rancherapi.ParseURL(raw)
	if err == nil {
		err = checkURLPath(raw)
	}
	if notRancher2URL(raw, api, err, projects, v) {
		return rancherapi.APIURL{}
	}
	if err != nil {
		v.Problem(env, "%v", err)
		return rancherapi.APIURL{}
	}
	switch id := api.Project; {
	case id == "":
	case api.Rancher2 && !rancherapi.ProjectIDPattern.MatchString(id):
		v.Problem(env, "%q is not a Rancher 2.x project id such as c-abcde:p-fghij (local:p-xxxxx for the local cluster)", id)
	case !api.Rancher2 && !environmentIDPattern.MatchString(id):
		v.Problem(env, "%q is not a Rancher 1.x environment id such as 1a5", id)
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

// notRancher2URL reports (and returns true) a CATTLE_URL that is not a Rancher
// 2.x API URL while a Rancher 2.x project id (c-…:p-…) is given, in
// RANCHER_PROJECTS or in the URL's own path, naming the …/v3 URL to use. A bare
// host otherwise means Rancher 1.x, whose "not an environment id" error would
// send the user the wrong way.
func notRancher2URL(raw string, api rancherapi.APIURL, parseErr error, projects []string, v setup.Values) bool {
	if parseErr == nil && api.Rancher2 {
		return false
	}
	inURL := rancherapi.Rancher2ProjectIn(raw)
	named := inURL
	for _, p := range projects {
		if named == "" && rancherapi.ProjectIDPattern.MatchString(p) {
			named = p
		}
	}
	if named == "" {
		return false
	}
	where := "RANCHER_PROJECTS names " + named
	if inURL != "" {
		where = "its path names " + inURL
	}
	use := rancherapi.SuggestV3URL(raw, inURL)
	if u, err := url.Parse(strings.TrimSpace(raw)); err == nil && inURL == "" && checkURLPath(raw) != nil {
		use = u.Scheme + "://" + u.Host + "/v3" // a path without a version is a typo more often than a proxy prefix
	}
	if use == "" {
		use = "https://<rancher host>/v3"
	}
	what := "is not a Rancher 2.x API URL"
	if parseErr != nil {
		what += " (" + parseErr.Error() + ")"
	} else if api.Project == "" && strings.Trim(api.Root.Path, "/") == "v2-beta" && strings.Count(strings.TrimSpace(raw), "/") <= 3 {
		what = "is a bare host, which means Rancher 1.x"
	}
	v.Problem("CATTLE_URL", "%s %s, but %s, a Rancher 2.x project (<cluster id>:<project id>): use CATTLE_URL=%s", sanitizedURL(raw), what, where, use)
	return true
}

// sanitizedURL is raw without userinfo, query or fragment, for messages.
func sanitizedURL(raw string) string {
	if u := rancherapi.SuggestV3URL(raw, ""); u == "" {
		return "the URL"
	}
	s := strings.TrimSpace(raw)
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
			rest = rest[at+1:]
		}
		s = scheme + "://" + rest
	}
	return s
}
