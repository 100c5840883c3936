package httpapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/redact"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// MaxReasonLen caps each error text /readyz shows: a reason, not a transcript,
// yet long enough to keep the fix the daemon's own errors end with (the RBAC
// grant of a refusal, the CATTLE_URL forms of a server that is not Rancher).
const MaxReasonLen = 600

// State is what the endpoints report on; *refresher.Refresher implements it.
type State interface {
	Healthy(now time.Time) bool
	// Readiness is bounded whatever the number of scopes: a summary per group
	// and registry, at most refresher.MaxListedPairs pairs, those not ready first.
	Readiness(now time.Time) refresher.Readiness
}

var _ State = (*refresher.Refresher)(nil)

// Elected is this replica's part in leader election (LEADER_ELECTION):
// *leader.Elector implements it.
type Elected interface {
	Role(now time.Time) (role, leader string, fresh bool)
	// LastError is the last failed call on the Lease (a refusal names the
	// verb, the resource, the namespace and the grant), nil after a success.
	LastError() error
}

// readyz is the /readyz body: the refresher's readiness, and with leader
// election this replica's role and the leader.
type readyz struct {
	refresher.Readiness
	Role   string `json:"role,omitempty"`
	Leader string `json:"leader,omitempty"`
}

func serveReadyz(w http.ResponseWriter, s State, e Elected) {
	now := time.Now()
	body := readyz{Readiness: shortReasons(s.Readiness(now))}
	if e != nil {
		body.Role, body.Leader, body.Ready, body.Reason = followerReadiness(e, now, body.Readiness)
		body.Reason = redact.Bounded(body.Reason, MaxReasonLen)
	}
	w.Header().Set("Content-Type", "application/json")
	if !body.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(body)
}

// followerReadiness: the leader is ready as the refresher says. A follower
// writes nothing, so its own readiness says nothing; it is ready while some
// replica holds a lease renewed within the lease duration (a two-replica
// Deployment then neither flaps nor looks healthy with no leader writing).
// The leader's write failures show on the leader alone. A replica that
// cannot read or write the Lease says why (a missing grant, named), not
// merely that nobody holds it.
func followerReadiness(e Elected, now time.Time, rd refresher.Readiness) (role, leader string, ready bool, reason string) {
	role, leader, fresh := e.Role(now)
	lastErr := e.LastError() // once: the election may clear it meanwhile
	switch {
	case role == "leader":
		return role, leader, rd.Ready, rd.Reason
	case fresh:
		return role, leader, true, ""
	case lastErr != nil:
		return role, leader, false, "follower: leader election cannot use its Lease: " + lastErr.Error()
	case leader == "":
		return role, leader, false, "follower: no replica holds the lease"
	default:
		return role, leader, false, "follower: the leader " + leader + " has not renewed the lease within its duration"
	}
}

// shortReasons cuts every error text of rd to MaxReasonLen bytes, on a rune
// boundary, without touching the caller's slices.
func shortReasons(rd refresher.Readiness) refresher.Readiness {
	rd.Reason = redact.Bounded(rd.Reason, MaxReasonLen)
	rd.Pairs = slices.Clone(rd.Pairs)
	for i := range rd.Pairs {
		rd.Pairs[i].LastError = redact.Bounded(rd.Pairs[i].LastError, MaxReasonLen)
	}
	rd.Sources = slices.Clone(rd.Sources)
	for i := range rd.Sources {
		rd.Sources[i].LastError = redact.Bounded(rd.Sources[i].LastError, MaxReasonLen)
	}
	return rd
}
