// Package ecrsource gets Amazon ECR login tokens: one GetAuthorizationToken
// call per region and AWS identity, decoded into the refresher's Tokens. It is
// the refresher's Source; it knows nothing of where tokens are written. See
// docs/ecr.md.
package ecrsource

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/redact"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/registryhost"
)

// API is the one ECR call a Source makes; *ecr.Client implements it.
type API interface {
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, optFns ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
}

var _ API = (*ecr.Client)(nil)

// Source is one GetAuthorizationToken call: a region and the registry ids
// asked for there (none: the caller's own registry), as one AWS identity.
type Source struct {
	notes

	// Client makes the call, with the identity's credentials.
	Client API
	// AWSRegion is the region asked.
	AWSRegion string
	// RegistryIDs are the 12-digit account ids asked for; none: the caller's own.
	RegistryIDs []string
	// ProxyHost, when set, is the host tokens are written under instead of the
	// ECR host (ECR_PROXY_HOST; one registry only).
	ProxyHost string
	// Identity is the role whose tokens these are ("" for the daemon's own),
	// set on every Token.
	Identity string
	// Logger receives warnings about the answers (entries not asked for,
	// implausible expiry).
	Logger logrus.FieldLogger
	// Now is the clock; tests replace it.
	Now func() time.Time
}

var _ refresher.Source = (*Source)(nil)

// Region is the region asked.
func (s *Source) Region() string { return s.AWSRegion }

// Label names the source in logs and errors.
func (s *Source) Label() string {
	l := "default registry in " + s.AWSRegion
	if len(s.RegistryIDs) > 0 {
		l = "registries " + strings.Join(s.RegistryIDs, ",") + " in " + s.AWSRegion
	}
	if s.Identity != "" {
		l += " as " + s.Identity
	}
	return l
}

func (s *Source) log() logrus.FieldLogger {
	if s.Logger == nil {
		return logrus.StandardLogger()
	}
	return s.Logger.WithField("region", s.AWSRegion)
}

func (s *Source) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// Fetch makes one GetAuthorizationToken call and decodes the entries asked
// for: ECR registry hosts of the requested ids in this region
// (docs/ecr.md#registry-hosts) or, with no ids, of one account (the caller's
// own). Anything else, such as a foreign proxyEndpoint, and repeats of a host
// are skipped, never written, with one warning line.
func (s *Source) Fetch(ctx context.Context) refresher.Fetched {
	in := &ecr.GetAuthorizationTokenInput{}
	if len(s.RegistryIDs) > 0 {
		// Deprecated in the model because it no longer narrows the token's
		// permissions, but it still decides which proxyEndpoints come back: one
		// registry host per id, which is what AWS_ECR_REGISTRY_IDS asks for.
		//lint:ignore SA1019 the ids select the registry hosts returned, see above
		in.RegistryIds = s.RegistryIDs
	}
	now := s.now()
	out, err := s.Client.GetAuthorizationToken(ctx, in)
	if err != nil {
		return refresher.Fetched{Err: s.callError("ecr", s.Label(), err)}
	}
	var f refresher.Fetched
	var sk skipped
	wanted := map[string]bool{}
	for _, id := range s.RegistryIDs {
		wanted[id] = true
	}
	account := "" // with no ids: the one account accepted, the first seen
	seen := map[string]bool{}
	for i, d := range out.AuthorizationData {
		host, err := registryhost.NormalizeHost(deref(d.ProxyEndpoint))
		if err != nil {
			sk.foreign(fmt.Sprintf("entry %d: proxyEndpoint %v", i, err))
			continue
		}
		id, region, ok := registryhost.ParseECR(host)
		switch {
		case !ok || region != s.AWSRegion:
			sk.foreign(host)
			continue
		case len(wanted) > 0 && !wanted[id], len(wanted) == 0 && account != "" && id != account:
			sk.foreign(host)
			continue
		case seen[host]:
			sk.repeated++
			continue
		}
		account, seen[host] = id, true
		t := refresher.Token{Host: host, ECRHost: host, RegistryID: id, Region: s.AWSRegion, FetchedAt: now, Identity: s.Identity}
		if s.ProxyHost != "" {
			t.Host = s.ProxyHost
		}
		t, err = s.token(s.log(), t, deref(d.AuthorizationToken), d.ExpiresAt)
		if err != nil {
			f.Problems = append(f.Problems, fmt.Errorf("ecr answer for %s: %w", host, err))
			continue
		}
		f.Tokens = append(f.Tokens, t)
	}
	// An id whose entry was unusable is reported as such above, not as missing.
	got := map[string]bool{}
	for h := range seen {
		got[strings.SplitN(h, ".", 2)[0]] = true
	}
	for _, id := range s.RegistryIDs {
		if !got[id] {
			f.Problems = append(f.Problems, fmt.Errorf("ecr returned no token for registry %s in %s", id, s.AWSRegion))
		}
	}
	if len(s.RegistryIDs) == 0 && len(seen) == 0 {
		f.Problems = append(f.Problems, fmt.Errorf("ecr returned no token (%s)", s.Label()))
	}
	if sk.n > 0 || sk.repeated > 0 {
		s.log().WithField("skipped", sk.String()).Warn("ecr answered entries that were not asked for; they are not written")
	}
	return f
}

// skipped counts the authorizationData entries a call did not ask for, keeping
// a few examples, so one line reports them all.
type skipped struct {
	n, repeated int
	examples    []string
}

const skippedExamples = 3

func (sk *skipped) foreign(what string) {
	sk.n++
	if len(sk.examples) < skippedExamples {
		sk.examples = append(sk.examples, redact.Bounded(what, 80))
	}
}

func (sk skipped) String() string {
	var parts []string
	if sk.n > 0 {
		parts = append(parts, fmt.Sprintf("%d entries not asked for (e.g. %s)", sk.n, strings.Join(sk.examples, ", ")))
	}
	if sk.repeated > 0 {
		parts = append(parts, fmt.Sprintf("%d repeated hosts", sk.repeated))
	}
	return strings.Join(parts, "; ")
}
