package kubeapi

import "errors"

// MaxPages bounds one listing: at 500 items a page, more than any cluster
// holds of one kind.
const MaxPages = 10000

// ErrEndlessPagination is a listing whose server keeps answering with a
// continue token it gave before, or with more than MaxPages pages.
var ErrEndlessPagination = errors.New("pagination does not end: the server keeps answering with more pages")

// Pages follows a listing's continue tokens (metav1.ListOptions.Continue)
// and stops a server whose pagination never ends.
type Pages struct {
	seen map[string]bool
}

// Next takes the continue token of the page just read: "" when the listing
// is done, else the token to ask the next page with, or
// ErrEndlessPagination.
func (p *Pages) Next(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	if p.seen[token] || len(p.seen) >= MaxPages {
		return "", ErrEndlessPagination
	}
	p.seen[token] = true
	return token, nil
}
