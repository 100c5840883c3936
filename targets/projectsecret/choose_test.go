package projectsecret_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logbuf"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/projectsecret"
)

func TestChoose(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ mode, version, want string }{
		{"auto", "v2.11.9", "v3"},
		{"auto", "v2.12.0", "kubernetes"},
		{"auto", "v2.12.3", "kubernetes"},
		{"auto", "v2.13.0-rc1", "kubernetes"},
		{"auto", "v2.14.4", "kubernetes"},
		{"auto", "v2.15.0", "kubernetes"},
		{"auto", "dev", "kubernetes"},
		{"auto", "master-head", "kubernetes"},
		{"auto", "v2.11-8f3a9c1-head", "v3"}, // a build of the 2.11 branch
		{"auto", "banana", "v3"},             // unreadable: /v3 works everywhere
		{"v3", "v2.15.0", "v3"},
		{"kubernetes", "v2.9.0", "kubernetes"},
	} {
		ch := projectsecret.Choose(tc.mode, tc.version)
		if ch.Mode != tc.want || ch.Reason == "" {
			t.Errorf("Choose(%s, %s) = %+v, want %s", tc.mode, tc.version, ch, tc.want)
		}
	}
}

// The token's expiry is exported and warned about a week ahead, once a day;
// the token itself never reaches the logs.
func TestTokenWatch(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	exp := now.Add(5 * 24 * time.Hour)
	c := tokenClient(t, exp)
	var logs logbuf.Buffer
	log := logrus.New()
	log.SetOutput(&logs)
	var got time.Time
	clock := now
	w := &projectsecret.TokenWatch{Client: c, Log: log, Every: time.Hour, Now: func() time.Time { return clock }, OnExpiry: func(at time.Time) { got = at }}
	w.Check(t.Context())
	if !got.Equal(exp) || strings.Count(logs.String(), "expires soon") != 1 {
		t.Fatalf("expiry %v, logs:\n%s", got, logs.String())
	}
	clock = now.Add(2 * time.Hour) // read again, but warned today already
	w.Check(t.Context())
	clock = now.Add(25 * time.Hour)
	w.Check(t.Context())
	if n := strings.Count(logs.String(), "expires soon"); n != 2 {
		t.Errorf("%d warnings, want 2 (one a day):\n%s", n, logs.String())
	}
	clock = exp.Add(time.Minute)
	w.Check(t.Context())
	if !strings.Contains(logs.String(), "has expired") || strings.Contains(logs.String(), tokenSecret) {
		t.Errorf("logs:\n%s", logs.String())
	}
}

// TokenWatch.Target checks the token before each plan, then plans through
// the target it wraps, its plan and error unchanged.
func TestTokenWatch_Target(t *testing.T) {
	t.Parallel()
	exp := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	c := tokenClient(t, exp)
	var got time.Time
	w := &projectsecret.TokenWatch{Client: c, Log: logrus.New(), Every: time.Hour, OnExpiry: func(at time.Time) { got = at }}
	var inner v3Target
	plan, err := w.Target(&inner).Plan(t.Context(), refresher.Input{})
	if err != nil || len(plan.Writes) != 0 || inner.plans.Load() != 1 || !got.Equal(exp) {
		t.Errorf("plan %+v, %v; inner plans %d; expiry read %v, want %v", plan, err, inner.plans.Load(), got, exp)
	}
}

// tokenClient is a client of a Rancher stand-in whose API token expires at exp.
func tokenClient(t *testing.T, exp time.Time) *rancherapi.Client {
	t.Helper()
	rs := ranchertest.New(ranchertest.Key{Access: "token-abcde", Secret: tokenSecret, Projects: []string{"*"}})
	rs.SetToken("token-abcde", ranchertest.TokenInfo{ExpiresAt: exp})
	hs := httptest.NewServer(rs)
	t.Cleanup(hs.Close)
	c, err := rancherapi.NewClient(hs.URL+"/v3", "", "token-abcde:"+tokenSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
