package rancherapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strings"
)

// Every answer of Rancher's APIs, Cattle (1.x) and norman (2.x), resource,
// collection or error, is a JSON object with a "type" (docs/rancher-api.md,
// "Collection envelope", "Error envelope"; norman's auth filter answers
// {"type":"error",…} too). A CATTLE_URL that points at something else (a web
// server, another JSON API, a Kubernetes API server) answers otherwise, and
// the status it answers with (404, 401, 200) would send the user after the
// wrong fix: a missing project, a rejected key. So such an answer is named
// for what it is, with the URL forms to check.

// notRancherFix is what to check when the server is not Rancher's API.
const notRancherFix = "check CATTLE_URL's host, port and path: " +
	"Rancher 1.x answers at https://<rancher>/v2-beta (or …/v1, …/v2-beta/projects/<environment id>), " +
	"Rancher 2.x at https://<rancher>/v3 (or …/v3/project/<cluster id>:<project id>)"

// kubeFix is added when a Kubernetes API server answered.
const kubeFix = "; a Kubernetes API server is not Rancher's API: to write pull Secrets into a cluster's namespaces, " +
	"set KUBE_NAMESPACES (the cluster comes from KUBECONFIG or the Pod's ServiceAccount)"

// sniffLen is how much of a body is kept to tell what answered.
const sniffLen = 64 << 10

// notRancher says what answered instead of a Rancher API, or "" when the
// answer may be Rancher's (or says nothing either way). A 5xx is never judged:
// a proxy's error page in front of a restarting Rancher is not a wrong URL.
func notRancher(status int, header http.Header, body []byte, secrets []string) string {
	if status >= 500 {
		return ""
	}
	b := bytes.TrimSpace(body)
	switch {
	case isHTML(header, b):
		if title := htmlTitle(b, secrets); title != "" {
			return fmt.Sprintf("it answered %d with an HTML page titled %q", status, title)
		}
		return fmt.Sprintf("it answered %d with an HTML page", status)
	case len(b) == 0:
		if status == http.StatusNotFound {
			return "it answered 404 with an empty body"
		}
		return ""
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		if json.Valid(b) {
			return fmt.Sprintf("it answered %d with JSON that is not an object", status)
		}
		if text := firstLine(b, secrets); text != "" {
			return fmt.Sprintf("it answered %d with plain text %q, not JSON", status, text)
		}
		return fmt.Sprintf("it answered %d with something that is not JSON", status)
	}
	var typ, kind, apiVersion string
	_ = json.Unmarshal(obj["type"], &typ)
	if typ != "" {
		return ""
	}
	_ = json.Unmarshal(obj["kind"], &kind)
	_ = json.Unmarshal(obj["apiVersion"], &apiVersion)
	if kind != "" && apiVersion != "" {
		what := "an object"
		if k, v := safeFieldName(kind), quoteShort(apiVersion, secrets); k != "" && v != "" {
			what = "a " + v + " " + k
		}
		return fmt.Sprintf("it answered %d as a Kubernetes API server does, with %s", status, what)
	}
	return fmt.Sprintf("it answered %d with JSON that has no \"type\", which every Rancher API answer has", status)
}

// notRancherHint is the hint of an Error whose server is not Rancher's API.
func notRancherHint(what string) string {
	h := "this does not look like a Rancher API (" + what + "): " + notRancherFix
	if strings.Contains(what, "Kubernetes API server") {
		h += kubeFix
	}
	return h
}

// isHTML: the server says so, or the body starts like markup.
func isHTML(header http.Header, b []byte) bool {
	if mt, _, err := mime.ParseMediaType(header.Get("Content-Type")); err == nil && (mt == "text/html" || mt == "application/xhtml+xml") {
		return true
	}
	return len(b) > 0 && b[0] == '<'
}

var titleRE = regexp.MustCompile(`(?is)<title[^>]*>([^<]{1,200})</title>`)

// htmlTitle is the page's title, short and printable ("Welcome to nginx!",
// "404 Not Found"), or "".
func htmlTitle(b []byte, secrets []string) string {
	m := titleRE.FindSubmatch(b)
	if m == nil {
		return ""
	}
	return quoteShort(strings.Join(strings.Fields(string(m[1])), " "), secrets)
}

// firstLine is the body's first line when it is short plain text ("404 page
// not found"), else "".
func firstLine(b []byte, secrets []string) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return quoteShort(string(bytes.TrimSpace(line)), secrets)
}

// quoteShort returns s when it is printable and at most 60 bytes with no
// secret-looking run and nothing of secrets, the request's own (what a page
// title or a version is), else "".
func quoteShort(s string, secrets []string) string {
	if s == "" || len(s) > 60 || safeMessage(s, secrets) != s || secretLooking.MatchString(s) {
		return ""
	}
	return s
}

// secretLooking is a run long enough to be a key or a token: a server's
// words are only quoted when they hold none.
var secretLooking = regexp.MustCompile(`[A-Za-z0-9+/=_-]{24,}`)
