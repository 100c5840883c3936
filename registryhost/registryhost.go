// Package registryhost names container registry hosts the one way every target
// and the ECR source compare them: NormalizeHost for any registry address,
// ParseECR for the hosts of Amazon ECR (docs/ecr.md#registry-hosts), and
// CredentialName for what this daemon names its own credentials.
package registryhost

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// NormalizeHost returns the lowercased host[:port] of a registry address such as
// "https://111122223333.dkr.ecr.us-east-1.amazonaws.com/", "Host:5000/path",
// "[::1]:5000" or "host". It fails for addresses with no usable host: empty
// labels ("x..", "a..b"), labels that are only punctuation or start or end
// with "-", an IPv6 address outside brackets, a port outside 1-65535.
//
// It is idempotent: NormalizeHost(h) == h for every h it returns (one trailing
// dot is dropped, the port loses leading zeros, IPv6 is written canonically).
func NormalizeHost(addr string) (string, error) {
	a := strings.TrimSpace(addr)
	if strings.Contains(a, "://") {
		u, err := url.Parse(a)
		if err != nil {
			return "", errors.New("not a URL")
		}
		a = u.Host
	} else if i := strings.IndexAny(a, "/?#"); i >= 0 {
		a = a[:i]
	}
	a = strings.ToLower(a)
	if a == "" {
		return "", errors.New("no host")
	}
	var host, port string
	hasPort := false
	if strings.HasPrefix(a, "[") {
		end := strings.Index(a, "]")
		if end < 0 {
			return "", errors.New("unclosed [ in host")
		}
		ip, err := netip.ParseAddr(a[1:end])
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return "", errors.New("invalid IPv6 address in brackets")
		}
		host = "[" + ip.String() + "]"
		if rest := a[end+1:]; rest != "" {
			if rest[0] != ':' {
				return "", errors.New("invalid character after ]")
			}
			port, hasPort = rest[1:], true
		}
	} else {
		host = a
		if i := strings.LastIndex(a, ":"); i >= 0 {
			host, port, hasPort = a[:i], a[i+1:], true
		}
		if strings.Contains(host, ":") {
			return "", errors.New("an IPv6 address must be in brackets, e.g. [::1]:5000")
		}
		host = strings.TrimSuffix(host, ".")
		if err := checkHostname(host); err != nil {
			return "", err
		}
	}
	if !hasPort {
		return host, nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || strings.Trim(port, "0123456789") != "" || n < 1 || n > 65535 {
		return "", errors.New("invalid port")
	}
	if port[0] != '0' && len(a) == len(host)+1+len(port) && strings.HasPrefix(a, host) {
		return a, nil // already canonical: no allocation (thousands per listing)
	}
	return host + ":" + strconv.Itoa(n), nil
}

// checkHostname accepts dot-separated labels of a-z, 0-9, "-" and "_" (Docker
// accepts underscores in registry names), each with a letter or digit and not
// starting or ending with "-".
func checkHostname(host string) error {
	if host == "" {
		return errors.New("no host")
	}
	if len(host) > 253 {
		return errors.New("host longer than 253 characters")
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" {
			return errors.New("empty label in host")
		}
		alnum := false
		for _, r := range label {
			switch {
			case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
				alnum = true
			case r == '-' || r == '_':
			default:
				return fmt.Errorf("invalid character %q in host", r)
			}
		}
		if !alnum || label[0] == '-' || label[len(label)-1] == '-' || len(label) > 63 {
			return fmt.Errorf("invalid label %q in host", label)
		}
	}
	return nil
}

// ecrHost matches an ECR registry host (a proxyEndpoint's host): account id,
// dkr.ecr or dkr-ecr with an optional -fips, region, partition suffix. The forms
// are listed in docs/ecr.md#registry-hosts. Emulators such as moto answer the
// standard form in every region, which this accepts too.
var ecrHost = regexp.MustCompile(`^([0-9]{12})\.(?:dkr\.ecr|dkr-ecr)(?:-fips)?\.([a-z0-9-]+)\.` +
	`(?:amazonaws\.com|amazonaws\.com\.cn|amazonaws\.eu|on\.aws|on\.amazonwebservices\.com\.cn|` +
	`c2s\.ic\.gov|sc2s\.sgov\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$`)

// ParseECR returns the account id and region of an ECR registry host, as
// NormalizeHost returns it; ok is false for any other host.
func ParseECR(host string) (account, region string, ok bool) {
	m := ecrHost.FindStringSubmatch(host)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// CredentialName is the name of the credential this process creates for a
// host: ecr-<account>-<region> for an ECR host, else derived from the host
// (ECR_PROXY_HOST, public.ecr.aws). It is a DNS-1123 label, as Kubernetes
// Secret names must be (Rancher stores a dockerCredential as a Secret of that
// name), so the same name serves /v3 and Rancher 2.12's project Secrets.
func CredentialName(host string) string {
	raw := "ecr-" + host
	if account, region, ok := ParseECR(host); ok {
		raw = "ecr-" + account + "-" + region
	}
	var b strings.Builder
	for _, ch := range strings.ToLower(raw) {
		if ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' {
			b.WriteRune(ch)
		} else {
			b.WriteRune('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	return name
}
