// Package kubewatch runs the client-go informers of a target (namespaces,
// ServiceAccounts, consumer Secrets, ClusterRepos) until its first listing is
// done, and stops waiting at once when the server refuses a listing: a
// target's Start says at once what RBAC is missing instead of waiting out
// its timeout.
package kubewatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/cache"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
)

// Informer is an informer, the handler its events go to, and the resource it
// lists (named in errors kubeapi did not name).
type Informer struct {
	cache.SharedIndexInformer
	Handler  cache.ResourceEventHandler
	Resource string
	// Registration is the handler's, set by Run before any informer runs
	// (its HasSynced tells whether the handler has had the first listing).
	Registration cache.ResourceEventHandlerRegistration
}

// Run runs the informers with their handlers until ctx is done. It returns once each
// informer has done its first listing (every object then there has been
// handed to its handler), or at once with the refusal when the server refuses
// a listing (forbidden, unauthorized) or does not have the resource (not
// found: no Rancher, so no ClusterRepos), or after timeout with the last
// failure. Each failure is logged at warning level; the informers retry.
func Run(ctx context.Context, log logrus.FieldLogger, timeout time.Duration, infs ...*Informer) error {
	waits := make([]cache.DoneChecker, 0, len(infs))
	var resources []string
	for _, inf := range infs {
		reg, err := inf.AddEventHandler(inf.Handler)
		if err != nil {
			return err
		}
		inf.Registration = reg
		waits = append(waits, reg.HasSyncedChecker())
		if !slices.Contains(resources, inf.Resource) {
			resources = append(resources, inf.Resource)
		}
	}
	what := strings.Join(resources, " and ")
	refused := make(chan error, 1)
	var last atomic.Pointer[error]
	for _, inf := range infs {
		_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
			err = listError(inf.Resource, err)
			last.Store(&err)
			log.WithError(err).Warn("kubernetes list/watch failed; retrying")
			// A refusal, or a resource the cluster does not have, will not go
			// away by retrying soon.
			if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsNotFound(err) {
				select {
				case refused <- err:
				default:
				}
			}
		})
		go inf.RunWithContext(ctx)
	}
	// cache.WaitFor is told by the informers' channels, where
	// cache.WaitForCacheSync polls every 100 ms: the first write comes that
	// much sooner after start.
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	synced := make(chan bool, 1)
	go func() { synced <- cache.WaitFor(wctx, "", waits...) }()
	select {
	case ok := <-synced:
		if ok {
			return nil
		}
		if p := last.Load(); p != nil {
			return fmt.Errorf("first listing of %s not done within %s: %w", what, timeout, *p)
		}
		return fmt.Errorf("first listing of %s not done within %s: %w", what, timeout, context.Cause(wctx))
	case err := <-refused:
		return fmt.Errorf("first listing of %s: %w", what, err)
	}
}

// listError names the listing in an error kubeapi did not name (a watch
// decoding failure, a dropped connection).
func listError(resource string, err error) error {
	var e *kubeapi.Error
	if errors.As(err, &e) {
		return err
	}
	return &kubeapi.Error{Verb: "list", Resource: resource, Verbs: []string{"list", "watch"}, Err: err}
}
