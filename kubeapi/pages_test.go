package kubeapi_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
)

// A listing ends at an empty token; a token given again, or more than
// MaxPages pages, is a server whose pagination does not end.
func TestPages(t *testing.T) {
	t.Parallel()
	var p kubeapi.Pages
	if tok, err := p.Next("a"); tok != "a" || err != nil {
		t.Fatalf("first token: %q, %v", tok, err)
	}
	if tok, err := p.Next(""); tok != "" || err != nil {
		t.Fatalf("end: %q, %v", tok, err)
	}
	if _, err := p.Next("a"); !errors.Is(err, kubeapi.ErrEndlessPagination) {
		t.Errorf("a token given again: %v, want ErrEndlessPagination", err)
	}
	var q kubeapi.Pages
	var err error
	for i := 0; err == nil && i <= kubeapi.MaxPages; i++ {
		_, err = q.Next(fmt.Sprint(i))
	}
	if !errors.Is(err, kubeapi.ErrEndlessPagination) {
		t.Errorf("after %d pages: %v, want ErrEndlessPagination", kubeapi.MaxPages, err)
	}
}
