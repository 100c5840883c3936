package tenantrole

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// DefaultMaxRoles bounds the sessions a Resolver keeps: a tenant who names
// ever new (allowed) roles costs at most this many.
const DefaultMaxRoles = 256

// Resolver turns the role a scope names into the refresher's sources
// (Refresher.Sources): refused unless the allow list allows it, else one
// aws.Config per role whose credentials come from one AssumeRole session,
// cached and renewed only once it expires, and one ECR source per region
// over it. Build it once; it is safe for concurrent use and touches no
// network until a source fetches.
//
// One session per role, whatever the number of scopes naming it: STS is
// called once per role per session lifetime, ECR once per role and region
// per refresh. The session is named for the first scope that asked (a
// namespace or a project id, as SessionName spells it); later scopes of the
// role share it, so AWS CloudTrail names that first one for all of them, and
// the daemon's log says which scope got which role's tokens.
type Resolver struct {
	mu    sync.Mutex
	roles map[string]*role // by ARN: allowed roles asked for
	asked uint64

	// Allow decides which roles a tenant may name.
	Allow AllowList
	// Base is the daemon's own AWS configuration: its credentials call
	// sts:AssumeRole, never ECR for a tenant.
	Base aws.Config
	// ExternalID, when set, is sent with every AssumeRole
	// (AWS_ROLE_EXTERNAL_ID): a tenant role's trust policy can require it.
	ExternalID string
	// NewSources makes the sources of one role, one per region, over cfg
	// (whose credentials are the role's), each labelled with identity.
	NewSources func(cfg aws.Config, identity string) []refresher.Source
	// STSOptions are added to the STS client's options.
	STSOptions []func(*sts.Options)
	// MaxRoles bounds the sessions kept (DefaultMaxRoles when zero): past it
	// the one asked for least recently is forgotten (a scope still using it
	// keeps its sources).
	MaxRoles int
	// Metrics, when set, counts per role.
	Metrics *Metrics
	// Logger receives one line per new session.
	Logger logrus.FieldLogger
}

// role is one allowed role's session and sources.
type role struct {
	sources []refresher.Source
	asked   uint64
}

// Sources is Refresher.Sources: the sources of identity (a role ARN), or the
// refusal of it. scope, the first scope to ask, names the session.
func (r *Resolver) Sources(identity, scope string) ([]refresher.Source, error) {
	if err := r.Allow.Check(identity); err != nil {
		r.Metrics.refused()
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked++
	if ro := r.roles[identity]; ro != nil {
		ro.asked = r.asked
		return ro.sources, nil
	}
	if r.roles == nil {
		r.roles = map[string]*role{}
	}
	limit := r.MaxRoles
	if limit <= 0 {
		limit = DefaultMaxRoles
	}
	if len(r.roles) >= limit {
		r.evict()
	}
	session := SessionName(scope)
	cfg := r.Base.Copy()
	cfg.Credentials = aws.NewCredentialsCache(&counted{
		CredentialsProvider: AssumeRoleProvider(sts.NewFromConfig(r.Base, r.STSOptions...), identity, session, r.ExternalID),
		role:                identity, m: r.Metrics,
	})
	ro := &role{asked: r.asked}
	for _, s := range r.NewSources(cfg, identity) {
		ro.sources = append(ro.sources, &roleSource{Source: s, role: identity, m: r.Metrics})
	}
	r.roles[identity] = ro
	if r.Logger != nil {
		r.Logger.WithFields(logrus.Fields{"identity": identity, "session": session, "scope": scope}).
			Info("tenant role allowed; its tokens come from one AssumeRole session, shared by every scope naming it")
	}
	return ro.sources, nil
}

// evict forgets the role asked for least recently. Call with r.mu held.
func (r *Resolver) evict() {
	var oldest string
	for arn, ro := range r.roles {
		if oldest == "" || ro.asked < r.roles[oldest].asked {
			oldest = arn
		}
	}
	delete(r.roles, oldest)
}

// SessionName is the AssumeRole session name for a scope: its name with every
// character STS refuses (outside [\w+=,.@-]) made a dash, "namespace/" and
// such kind prefixes kept, cut to STS's 64 characters from the end (the
// namespace's own name is the end), at least 2 characters
// (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html).
func SessionName(scope string) string {
	s := strings.Map(func(c rune) rune {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.ContainsRune("_+=,.@-", c):
			return c
		}
		return '-'
	}, scope)
	if len(s) > 64 {
		s = s[len(s)-64:]
	}
	switch len(s) {
	case 0:
		return "rancher-ecr-credentials"
	case 1:
		return s + "-"
	}
	return s
}

// counted is the AssumeRole provider, counting its calls per role.
type counted struct {
	aws.CredentialsProvider
	role string
	m    *Metrics
}

func (c *counted) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := c.CredentialsProvider.Retrieve(ctx)
	c.m.assumed(c.role, err)
	return creds, err
}

// roleSource is a tenant role's ECR source: its failures name the fix when
// STS or ECR denies the role, and each fetch is counted per role.
type roleSource struct {
	refresher.Source
	role string
	m    *Metrics
}

func (s *roleSource) Fetch(ctx context.Context) refresher.Fetched {
	f := s.Source.Fetch(ctx)
	if f.Err != nil {
		f.Err = explain(f.Err)
	}
	s.m.fetched(s.role, s.Region(), f.Err == nil && len(f.Problems) == 0)
	return f
}

// explain adds the fix to a denial: the trust policy for STS, the
// permissions for ECR. The error keeps its code and its Temporary answer.
func explain(err error) error {
	service, _ := ecrsource.FailedIn(err)
	switch code := ecrsource.Code(err); {
	case service == "STS" && (code == "AccessDenied" || code == "AccessDeniedException"):
		return fmt.Errorf("%w; the role's trust policy must allow sts:AssumeRole by the daemon's own AWS identity"+
			" (with the condition sts:ExternalId equal to AWS_ROLE_EXTERNAL_ID when that is set): see README.md, \"Security model\"", err)
	case service == "ECR" && (code == "AccessDeniedException" || code == "AccessDenied"):
		return fmt.Errorf("%w; the role's permissions policy must allow ecr:GetAuthorizationToken (and pulls from the repositories the tenant uses)", err)
	}
	return err
}

// AssumeRoleProvider assumes role through client as session, with
// externalID when it is set (AWS_ROLE_EXTERNAL_ID): the daemon's own
// AWS_ROLE_ARN and every tenant role are assumed alike.
func AssumeRoleProvider(client stscreds.AssumeRoleAPIClient, role, session, externalID string) *stscreds.AssumeRoleProvider {
	return stscreds.NewAssumeRoleProvider(client, role, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = session
		if externalID != "" {
			o.ExternalID = aws.String(externalID)
		}
	})
}
