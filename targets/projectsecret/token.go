package projectsecret

import (
	"context"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// TokenWarnAhead is how long before a Rancher API token expires a warning is logged.
const TokenWarnAhead = 7 * 24 * time.Hour

// TokenWatch reads when the Rancher API token in use expires and warns in time:
// Rancher's tokens expire (kubeconfig tokens after 30 days by default; the
// auth-token-max-ttl-minutes setting caps every token,
// https://ranchermanager.docs.rancher.com/api/api-tokens), and a daemon whose
// token expired writes nothing.
type TokenWatch struct {
	Client *rancherapi.Client
	Log    logrus.FieldLogger
	// OnExpiry receives the expiry each time it is read (zero: the token does not expire).
	OnExpiry func(time.Time)
	// Now is the clock (time.Now when nil). Every is how often the token is read again.
	Now   func() time.Time
	Every time.Duration

	mu      sync.Mutex
	checked time.Time
	warned  time.Time
}

// Check reads the token when it was last read longer than Every ago, and
// warns (at most daily) when it expires within TokenWarnAhead. It never fails:
// a token whose owner may not read it, or an ext/ token /v3 does not know,
// just has no known expiry.
func (w *TokenWatch) Check(ctx context.Context) {
	name := w.Client.TokenName()
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if name == "" || (!w.checked.IsZero() && now.Sub(w.checked) < w.Every) {
		return
	}
	w.checked = now
	tok, err := w.Client.GetAPIToken(ctx, name)
	if err != nil {
		w.Log.WithError(err).Debug("the Rancher API token's expiry could not be read")
		return
	}
	at, expires := tok.Expiry()
	if w.OnExpiry != nil {
		w.OnExpiry(at)
	}
	log := w.Log.WithField("token", name)
	if tok.ClusterID != "" && tok.ClusterID != "local" {
		log.WithField("cluster", tok.ClusterID).Warn("the Rancher API token is scoped to another cluster than the local one: " +
			"Rancher 2.12+ project Secrets are written through the local cluster, which it cannot reach; use an API key with no scope")
	}
	switch {
	case !expires:
	case tok.Expired || !at.After(now):
		log.WithField("expired_at", at.UTC().Format(time.RFC3339)).Error("the Rancher API token has expired: create a new API key in Rancher and put it in CATTLE_SECRET_KEY (or CATTLE_SECRET_KEY_FILE)")
		w.warned = now
	case at.Sub(now) <= TokenWarnAhead && (w.warned.IsZero() || now.Sub(w.warned) >= 24*time.Hour):
		log.WithFields(logrus.Fields{"expires_at": at.UTC().Format(time.RFC3339), "expires_in": at.Sub(now).Round(time.Hour).String()}).
			Warn("the Rancher API token expires soon: create a new API key in Rancher and put it in CATTLE_SECRET_KEY (or CATTLE_SECRET_KEY_FILE) before then")
		w.warned = now
	}
}

func (w *TokenWatch) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// Target returns t, checking the token (at most every Every) before each plan.
func (w *TokenWatch) Target(t refresher.Target) refresher.Target { return &watched{w: w, t: t} }

type watched struct {
	w *TokenWatch
	t refresher.Target
}

// Plan checks the token (at most every Every), then plans through the target.
func (t *watched) Plan(ctx context.Context, want refresher.Input) (refresher.Plan, error) {
	t.w.Check(ctx)
	return t.t.Plan(ctx, want)
}
