package targettest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/registryhost"
)

// PasswordSize is the length of a real ECR password (about 2,400 characters).
const PasswordSize = 2400

// Source is a refresher Source: every fetch a new real-size password per
// host of Hosts, each recorded (Env checks that none reached the logs).
type Source struct {
	mu     sync.Mutex
	issued []string
	last   map[string]string

	// Hosts are the registries each fetch hands out a token for.
	Hosts []string
}

// Label names the source in logs and readiness.
func (s *Source) Label() string { return "test registries" }

// Region is the source's region.
func (s *Source) Region() string { return "us-east-1" }

// Fetch hands out a fresh token for every host of Hosts.
func (s *Source) Fetch(context.Context) refresher.Fetched {
	now := time.Now()
	var toks []refresher.Token
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[string]string{}
	}
	for _, h := range s.Hosts {
		pw := NewPassword()
		s.issued = append(s.issued, pw)
		s.last[h] = pw
		acct, region, _ := registryhost.ParseECR(h)
		toks = append(toks, refresher.Token{Host: h, ECRHost: h, RegistryID: acct, Region: region, Username: "AWS", Password: pw,
			FetchedAt: now, ExpiresAt: now.Add(refresher.TokenLifetime)})
	}
	return refresher.Fetched{Tokens: toks}
}

// Password is the last password handed out for host.
func (s *Source) Password(host string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[host]
}

// Issued is every password handed out so far.
func (s *Source) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

// NewPassword returns a fresh password of the size ECR hands out.
func NewPassword() string {
	b := make([]byte, PasswordSize*3/4)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}
