package rancherapi

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// APIURL is a Rancher API URL taken apart: the base collections hang off, the
// version root, the scope it names, and whether it is Rancher 2.x (/v3).
type APIURL struct {
	Base     *url.URL // ends in "/": …/v2-beta/projects/1a5/ or …/v3/project/c-x:p-y/
	Root     *url.URL // the version root, ending in "/": …/v2-beta/ or …/v3/
	Project  string   // the environment or project named, "" for none
	Rancher2 bool
}

// ParseURL normalizes a Rancher API URL in any form users write it:
//
//	http(s)://host[:port][/prefix]                     → Rancher 1.x, …/v2-beta/
//	…/v1, …/v2-beta                                    → Rancher 1.x, unchanged
//	…/v1/projects/<id>, …/v2-beta/projects/<id>        → Rancher 1.x, scoped to <id>
//	…/v3                                               → Rancher 2.x, no project
//	…/v3/project/<c-x:p-y>, …/v3/projects/<c-x:p-y>    → Rancher 2.x, scoped
//
// A Rancher 1.x URL that ends in /projects/<id> is made explicitly scoped
// (…/projects/<id>/): Cattle only scopes a request when a path segment follows
// the id, which the old image got wrong, writing into other environments.
func ParseURL(raw string) (APIURL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return APIURL{}, fmt.Errorf("not a URL: %w", redactURLError(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return APIURL{}, fmt.Errorf("scheme must be http or https, e.g. https://rancher.example.com/v2-beta")
	}
	if u.Host == "" {
		return APIURL{}, fmt.Errorf("no host, e.g. https://rancher.example.com/v2-beta")
	}
	if u.User != nil {
		return APIURL{}, fmt.Errorf("must not hold credentials; use CATTLE_ACCESS_KEY and CATTLE_SECRET_KEY")
	}
	u.RawQuery, u.Fragment, u.RawPath, u.ForceQuery = "", "", "", false // "…/v1?" kept a "?" (FuzzParseURL)

	var segs []string
	for _, s := range strings.Split(u.Path, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	ver := slices.IndexFunc(segs, func(s string) bool {
		s = strings.ToLower(s)
		return s == "v1" || s == "v2-beta" || s == "v3"
	})
	for _, s := range segs {
		if ver >= 0 {
			break
		}
		switch strings.ToLower(s) {
		case "k8s", "api", "apis":
			return APIURL{}, fmt.Errorf("path %q is a Kubernetes API, not Rancher's; use https://<rancher>/v3 (Rancher 2.x) or https://<rancher>/v2-beta (Rancher 1.x)", u.Path)
		case "dashboard", "g", "login":
			return APIURL{}, fmt.Errorf("path %q is the Rancher UI, not its API; use https://<rancher>/v3 (Rancher 2.x) or https://<rancher>/v2-beta (Rancher 1.x)", u.Path)
		}
	}
	var prefix, rest []string
	if ver < 0 {
		prefix, rest = segs, []string{"v2-beta"}
	} else {
		prefix, rest = segs[:ver], segs[ver:]
	}
	a := APIURL{Rancher2: strings.EqualFold(rest[0], "v3")}
	switch {
	case len(rest) == 1:
	case a.Rancher2 && len(rest) == 3 && (strings.EqualFold(rest[1], "project") || strings.EqualFold(rest[1], "projects")):
		a.Project = rest[2]
	case !a.Rancher2 && len(rest) == 3 && strings.EqualFold(rest[1], "projects"):
		a.Project = rest[2]
	case a.Rancher2:
		return APIURL{}, fmt.Errorf("path %q is not a Rancher 2.x API path; use …/v3 or …/v3/project/<cluster id>:<project id>", u.Path)
	default:
		return APIURL{}, fmt.Errorf("path %q is not a Rancher 1.x API path; use …/v2-beta or …/v2-beta/projects/<environment id>", u.Path)
	}
	root := *u
	root.Path = "/" + strings.Join(append(prefix, rest[0]), "/") + "/"
	a.Root, a.Base = &root, &root
	if a.Project != "" {
		a.Base = projectURL(&root, a.Project, a.Rancher2)
	}
	return a, nil
}

// projectURL is the base of a project under a version root: Cattle's
// …/projects/<id>/, norman's …/project/<id>/.
func projectURL(root *url.URL, id string, rancher2 bool) *url.URL {
	seg := "projects"
	if rancher2 {
		seg = "project"
	}
	u := root.JoinPath(seg, url.PathEscape(id))
	u.Path += "/"
	return u
}

// redactURLError drops the offending URL from a url.Parse error: it may hold userinfo.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
