package rancherapi

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// maxRedirects bounds the same-origin redirects followed for one read.
const maxRedirects = 5

// Redirects: the API key travels in every request's Authorization header and a
// write's body holds a registry password, so the client never lets net/http
// follow a redirect that could carry either elsewhere (README, "Security"):
//
//   - to another origin (scheme, host or port: https→http included): never
//     followed, whatever the method or status; the answer is an *Error naming
//     the Location's origin, so the operator can fix CATTLE_URL;
//   - for a write (POST, PUT, …): never followed, even to the same origin: a
//     301/302/303 would turn the write into a GET whose 200 looks like success,
//     and a 307/308 would re-send the password to a URL the operator never named;
//   - a read (GET, HEAD) to the same origin: followed, up to maxRedirects
//     (proxies add trailing slashes or normalise case).
//
// This holds for any *http.Client given to NewClient: do runs each request on a
// copy of it whose CheckRedirect applies these rules first.

// checkRedirect wraps next (the given client's own policy, nil for the default)
// with the rules above. A refused redirect hands the 3xx answer itself back
// (http.ErrUseLastResponse): nothing is sent to its Location, and roundTrip
// turns the answer into an *Error.
func (c *Client) checkRedirect(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		orig := via[0]
		if !sameOrigin(req.URL, c.base) || !readOnly(orig.Method) || len(via) > maxRedirects {
			return http.ErrUseLastResponse
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
}

func readOnly(method string) bool { return method == http.MethodGet || method == http.MethodHead }

// sameOrigin compares scheme, host and port, with default ports made explicit.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(hostPort(a), hostPort(b))
}

func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// redirectMessage says why a 3xx answer was not followed and what to do. The
// Location is reduced to its origin, and only when that is a plain
// scheme://host[:port]: its path and query may hold anything.
func (c *Client) redirectMessage(req *http.Request, resp *http.Response) string {
	loc, err := resp.Location()
	if err != nil {
		return "redirect without a usable Location; set CATTLE_URL to Rancher's API URL"
	}
	origin := "another origin"
	if o, ok := plainOrigin(loc); ok {
		origin = o
	}
	switch {
	case !sameOrigin(loc, c.base):
		return fmt.Sprintf("Rancher redirected to %s, another origin than CATTLE_URL's %s; not followed, so the API key and request body did not leave it. "+
			"Set CATTLE_URL to that URL if it is where Rancher lives", origin, originOf(c.base))
	case !readOnly(req.Method):
		return "Rancher answered a write with a redirect; writes are never re-sent. Set CATTLE_URL to the URL Rancher's API answers under without redirecting"
	default:
		return fmt.Sprintf("more than %d redirects; set CATTLE_URL to the URL Rancher's API answers under without redirecting", maxRedirects)
	}
}

// plainOrigin returns scheme://host[:port] of u when it is short and made only of
// host characters.
func plainOrigin(u *url.URL) (string, bool) {
	s := strings.ToLower(u.Scheme)
	if s != "http" && s != "https" || u.Host == "" || len(u.Host) > 260 {
		return "", false
	}
	for _, r := range u.Host {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-_:[]", r)) {
			return "", false
		}
	}
	return s + "://" + u.Host, true
}

func originOf(u *url.URL) string { return strings.ToLower(u.Scheme) + "://" + u.Host }
