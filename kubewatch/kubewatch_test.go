package kubewatch_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus/hooks/test"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubewatch"
)

// listThenWatch is a ListWatch that lists, then watches (no streaming
// list), as a server without the WatchList feature serves it.
type listThenWatch struct{ *cache.ListWatch }

func (listThenWatch) IsWatchListSemanticsUnSupported() bool { return true }

// informer lists what list returns and watches nothing.
func informer(list func() (runtime.Object, error)) cache.SharedIndexInformer {
	return cache.NewSharedIndexInformer(listThenWatch{&cache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) { return list() },
		WatchFuncWithContext: func(context.Context, metav1.ListOptions) (watch.Interface, error) {
			return watch.NewFake(), nil
		},
	}}, &corev1.Namespace{}, 0, cache.Indexers{})
}

// Run returns once every handler has had the first listing; a refused
// listing ends it at once naming what was listed; a failing one, after the
// timeout with the last failure.
func TestRun(t *testing.T) {
	t.Parallel()
	listed := func() (runtime.Object, error) {
		return &corev1.NamespaceList{Items: []corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}}}, nil
	}
	forbidden := func() (runtime.Object, error) {
		return nil, apierrors.NewForbidden(schema.GroupResource{Resource: "namespaces"}, "", errors.New("no"))
	}
	broken := func() (runtime.Object, error) { return nil, errors.New("connection reset") }
	for _, tc := range []struct {
		name    string
		lists   []func() (runtime.Object, error)
		timeout time.Duration
		want    string // "" for no error
		refused bool
	}{
		{name: "Synced", lists: []func() (runtime.Object, error){listed, listed}, timeout: time.Minute},
		{name: "Refused", lists: []func() (runtime.Object, error){listed, forbidden}, timeout: time.Minute,
			want: "first listing of namespaces and serviceaccounts: ", refused: true},
		{name: "Timeout", lists: []func() (runtime.Object, error){broken}, timeout: 200 * time.Millisecond,
			want: "first listing of namespaces not done within 200ms: list namespaces"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			log, _ := test.NewNullLogger()
			var added atomic.Int32
			var infs []*kubewatch.Informer
			for i, list := range tc.lists {
				resource := []string{"namespaces", "serviceaccounts"}[i]
				infs = append(infs, &kubewatch.Informer{SharedIndexInformer: informer(list), Resource: resource,
					Handler: cache.ResourceEventHandlerFuncs{AddFunc: func(any) { added.Add(1) }}})
			}
			began := time.Now()
			err := kubewatch.Run(ctx, log, tc.timeout, infs...)
			if tc.want == "" {
				if err != nil || !infs[0].Registration.HasSynced() || int(added.Load()) != len(tc.lists) {
					t.Fatalf("Run = %v, synced %v, %d objects handed over", err, infs[0].Registration.HasSynced(), added.Load())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || apierrors.IsForbidden(err) != tc.refused {
				t.Fatalf("Run = %v, want %q (refused %v)", err, tc.want, tc.refused)
			}
			if tc.refused && time.Since(began) > tc.timeout/2 {
				t.Errorf("a refusal took %s", time.Since(began))
			}
		})
	}
}
