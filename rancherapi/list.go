package rancherapi

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// Listing is where a hostile or broken server could make the daemon hold
// anything it sends. So a collection (the gdapi envelope: {"type":
// "collection", "data": [...], "pagination": {"next": ...}}) is decoded as a
// stream, one item at a time into the small types of this package (unknown
// fields are skipped, not kept), and one listing, all its pages together, is
// bounded (README, "Security"):
const (
	// MaxListEntries bounds the entries of one listing: items, plus the
	// registry hosts each dockerCredential holds. A Rancher scope holds tens to
	// thousands; 100,000 is far above any real one and costs at most ~10 MB of
	// item structs.
	MaxListEntries = 100_000
	// MaxListBytes bounds the bytes read for one listing, all pages: about
	// 100,000 registries in Cattle's verbose shape.
	MaxListBytes = 64 << 20
	// maxValueBytes bounds one item, or any other value of the envelope: the
	// decoder holds a whole value in memory before decoding it.
	maxValueBytes = 1 << 20
	// maxPages stops a server whose pagination never ends.
	maxPages = 10000
	// ctxCheckEvery is how many items are decoded between checks of the context.
	ctxCheckEvery = 1024
)

var (
	errListTooBig  = errors.New("listing larger than its byte bound")
	errValueTooBig = fmt.Errorf("one entry larger than %d MiB", maxValueBytes>>20)
	errTooMany     = errors.New("too many entries")
)

// budget is what is left of one listing's bounds.
type budget struct {
	entries, maxEntries int
	bytes, limit        int64
}

// meter counts what the decoder reads: against the listing's byte budget, and
// since the last reset (one value) against maxValueBytes.
type meter struct {
	r     io.Reader
	b     *budget
	value int64
}

func (m *meter) Read(p []byte) (int, error) {
	switch {
	case m.b.bytes <= 0:
		return 0, errListTooBig
	case m.value >= maxValueBytes:
		return 0, errValueTooBig
	}
	// Never hand over more than the bounds allow: the decoder must run dry,
	// not finish on bytes past them.
	p = p[:min(int64(len(p)), m.b.bytes, maxValueBytes-m.value)]
	n, err := m.r.Read(p)
	m.b.bytes -= int64(n)
	m.value += int64(n)
	return n, err
}

// entryCounter is implemented by items that hold more than one entry.
type entryCounter interface{ entries() int }

// listAll reads every page of a collection, following pagination.next.
func listAll[T any](ctx context.Context, c *Client, rel string, q url.Values) ([]T, error) {
	return listAllURL[T](ctx, c, c.base.JoinPath(rel), q)
}

// listAllURL is listAll for a collection at u.
func listAllURL[T any](ctx context.Context, c *Client, u *url.URL, q url.Values) ([]T, error) {
	if q == nil {
		q = url.Values{}
	}
	q.Set("limit", strconv.Itoa(c.PageSize))
	u.RawQuery = q.Encode()
	var all []T
	b := &budget{maxEntries: cmp.Or(c.listEntries, MaxListEntries), limit: cmp.Or(c.listBytes, MaxListBytes)}
	b.entries, b.bytes = b.maxEntries, b.limit
	seen := map[string]bool{}
	for page := 0; ; page++ {
		if page >= maxPages || seen[u.String()] {
			return nil, &Error{Method: http.MethodGet, URL: sanitizeURL(u), StatusCode: http.StatusOK, Message: "pagination does not end"}
		}
		seen[u.String()] = true
		req, err := c.newRequest(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := c.roundTrip(req)
		if err != nil {
			return nil, err
		}
		body := bufio.NewReader(resp.Body)
		if nr := sniffPage(resp, body); nr != "" {
			closeBody(resp)
			return nil, &Error{Method: req.Method, URL: sanitizeURL(req.URL), StatusCode: resp.StatusCode, NotRancher: nr}
		}
		next, err := decodePage(ctx, body, b, &all)
		closeBody(resp)
		if err != nil {
			return nil, listError(ctx, req, b, err)
		}
		if next == "" {
			return all, nil
		}
		if u, err = c.resolve(next); err != nil {
			return nil, err
		}
	}
}

// listError turns a page's decoding error into an *Error that says what to fix.
func listError(ctx context.Context, req *http.Request, b *budget, err error) error {
	e := &Error{Method: req.Method, URL: sanitizeURL(req.URL), StatusCode: http.StatusOK}
	var ne *notCollection
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s %s: %w", req.Method, sanitizeURL(req.URL), ctx.Err())
	case errors.Is(err, errListTooBig):
		e.Message = fmt.Sprintf("listing larger than %d MiB across its pages; not read further (is CATTLE_URL a Rancher API URL?)", b.limit>>20)
	case errors.Is(err, errTooMany):
		e.Message = fmt.Sprintf("more than %d entries; not read further (is CATTLE_URL a Rancher API URL?)", b.maxEntries)
	case errors.Is(err, errValueTooBig):
		e.Message = err.Error() + "; not read further (is CATTLE_URL a Rancher API URL?)"
	case errors.As(err, &ne) && ne.typ == "":
		e.NotRancher = "it answered 200 with JSON that has no \"type\", which every Rancher API answer has"
	case errors.As(err, &ne):
		e.Message = ne.Error()
	case isJSONError(err):
		e.Message, e.Err = "response is not Rancher API JSON (is CATTLE_URL the API URL, not the UI?)", jsonError(err)
	default: // the connection failed mid-body
		e.StatusCode, e.Err = 0, boundError(err, nil)
	}
	return e
}

// sniffPage names an HTML page answered for a collection (a web server, or a
// UI, at CATTLE_URL), reading at most sniffLen of it; "" when the page may be
// JSON, which decodePage then reads from body.
func sniffPage(resp *http.Response, body *bufio.Reader) string {
	head, _ := body.Peek(512)
	if !isHTML(resp.Header, bytes.TrimSpace(head)) {
		return ""
	}
	page, _ := io.ReadAll(io.LimitReader(body, sniffLen))
	return notRancher(resp.StatusCode, resp.Header, page, requestSecrets(resp.Request))
}

func isJSONError(err error) bool {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	return errors.As(err, &se) || errors.As(err, &te) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errNotJSON)
}

var errNotJSON = errors.New("unexpected JSON token")

// notCollection is an answer that is JSON but not a collection.
type notCollection struct{ typ string }

func (e *notCollection) Error() string {
	t := "something else"
	if w := safeFieldName(e.typ); w != "" && len(w) <= 32 {
		t = strconv.Quote(w)
	}
	return "answer is a " + t + ", not a collection (is CATTLE_URL a Rancher API URL: https://<rancher>/v2-beta or https://<rancher>/v3?)"
}

// decodePage decodes one collection page from r, appending each item to all,
// and returns its pagination.next link.
func decodePage[T any](ctx context.Context, r io.Reader, b *budget, all *[]T) (next string, err error) {
	m := &meter{r: r, b: b}
	dec := json.NewDecoder(m)
	if err := expectDelim(dec, '{'); err != nil {
		return "", err
	}
	typ := ""
	for dec.More() {
		m.value = 0
		tok, err := dec.Token()
		if err != nil {
			return "", err
		}
		key, _ := tok.(string)
		m.value = 0
		switch key {
		case "type":
			if err := dec.Decode(&typ); err != nil {
				return "", err
			}
		case "data":
			if err := decodeItems(ctx, dec, m, all); err != nil {
				if typ == "" && isJSONError(err) {
					// Rancher names the collection before its data: items that
					// do not fit, under no type, are another API's.
					return "", &notCollection{typ}
				}
				return "", err
			}
		case "pagination":
			var p *struct {
				Next string `json:"next"`
			}
			if err := dec.Decode(&p); err != nil {
				return "", err
			}
			if p != nil {
				next = p.Next
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return "", err
			}
		}
	}
	if typ != "collection" {
		return "", &notCollection{typ}
	}
	return next, nil
}

// decodeItems decodes the data array (or null) one item at a time, each straight
// into its place in all.
func decodeItems[T any](ctx context.Context, dec *json.Decoder, m *meter, all *[]T) error {
	tok, err := dec.Token()
	if err != nil || tok == nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return errNotJSON
	}
	for i := 0; dec.More(); i++ {
		if i%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		m.value = 0
		var zero T
		*all = append(*all, zero)
		v := &(*all)[len(*all)-1]
		if err := dec.Decode(v); err != nil {
			return err
		}
		n := 1
		if ec, ok := any(v).(entryCounter); ok {
			n = ec.entries()
		}
		if m.b.entries -= n; m.b.entries < 0 {
			return errTooMany
		}
	}
	_, err = dec.Token() // ']'
	return err
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return errNotJSON
	}
	return nil
}
