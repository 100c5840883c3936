// Package multihost plans writes into credential objects that hold several
// registry hosts in one, without losing anyone's: a Rancher 2.x
// dockerCredential, a project-scoped Secret. Such an object is replaced whole
// on every write and its passwords cannot be read back, so it is rewritten
// only when every host in it is one this process manages (it can supply every
// password) and it is this process's to change; one that also holds other
// hosts is left alone, and the host goes into an object of this process's own.
package multihost

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// Object is an existing credential object.
type Object struct {
	// Key identifies it for its platform (an id, a namespace/name).
	Key string
	// Name is what a new object for a host is looked up by (its name on the
	// platform), and what notes call it.
	Name string
	// Title is what errors call it, e.g. "dockerCredential ecr-…" or
	// "secret ns/name"; empty means Name.
	Title string
	// Hosts are the registry hosts it holds, as registryhost.NormalizeHost
	// gives them (a key that is no host stays as it is: never a managed one).
	Hosts []string
	// Unknown is set when its content could not be read: it is never rewritten.
	Unknown bool
	// Refused, when set, says why this process may not change it (it is
	// someone else's); nil when it may, if it holds only managed hosts.
	Refused error
	// UpdateOnly objects are refreshed when wholly ours but never stand in for
	// a new object of that name (Rancher's namespaced dockerCredentials).
	UpdateOnly bool
}

// Assignment is one object to write.
type Assignment struct {
	// Object is the existing object, nil for a new one named Name.
	Object *Object
	Name   string
	// Tokens are every host it holds after the write, each with its token.
	Tokens []refresher.Token
	// Kept are managed hosts it holds whose token is not in hand: a writer
	// that can keep their entries as they are does; one that replaces the
	// object whole cannot write it.
	Kept []string
	// Dropped are, with want.TakeBack, the managed hosts it holds whose
	// token is not in hand: their entries are taken out (another identity's,
	// or a refused scope's). Tokens may then be empty.
	Dropped []string
}

// Assign decides, for every token in want, which objects hold it after this run:
// every existing object that is wholly this process's and holds the host,
// or else one named nameFor(host), created or (when it is wholly ours
// already, its host removed by hand) given the host back. A host whose own
// name is taken by an object that is not wholly ours fails, naming it. Each
// object is assigned once, with every host it holds. With want.TakeBack the
// managed hosts it holds without a token are Dropped, not Kept, and every
// object wholly ours that holds none of the tokens is assigned too, with
// only hosts to drop.
func Assign(want refresher.Input, objects []Object, nameFor func(host string) string) ([]Assignment, []refresher.Failure) {
	p := planner{want: want, byKey: map[string]int{}}
	byName := map[string]*Object{}
	held := map[string][]*Object{} // host → objects wholly ours that hold it
	for i := range objects {
		o := &objects[i]
		if !o.UpdateOnly {
			byName[o.Name] = o
		}
		mine := p.mine(o)
		var hosts []string // hosts being written that o, not ours, holds
		for _, h := range o.Hosts {
			switch {
			case !want.Managed(h):
			case mine:
				if !slices.Contains(held[h], o) {
					held[h] = append(held[h], o)
				}
			case p.has(h) && !slices.Contains(hosts, h):
				hosts = append(hosts, h)
			}
		}
		if len(hosts) > 0 { // a note, once per object: the hosts go into objects of our own
			want.Log.WithFields(logrus.Fields{"credential": o.Name, "registry": strings.Join(hosts, ",")}).
				Warn("a credential holding this host is not this process's to rewrite (it holds hosts of others, or someone else made it); left untouched, so it is not refreshed: pulls that use it fail once its token expires")
		}
	}
	var failures []refresher.Failure
	for _, t := range want.Tokens {
		targets := held[t.Host]
		if !slices.ContainsFunc(targets, func(o *Object) bool { return !o.UpdateOnly }) {
			name := nameFor(t.Host)
			o := byName[name]
			if o == nil {
				p.assign(nil, name, t)
			} else if err := p.whollyOurs(o); err != nil {
				failures = append(failures, refresher.Failure{Host: t.Host, Err: err})
			} else {
				targets = append(targets, o) // ours by name, its host removed by hand: put it back
			}
		}
		for _, o := range targets {
			p.assign(o, o.Name, t)
		}
	}
	if want.TakeBack {
		// Objects wholly ours that hold none of the tokens: each is written
		// with its managed hosts taken out.
		for i := range objects {
			o := &objects[i]
			if _, done := p.byKey["obj:"+o.Key]; done || len(o.Hosts) == 0 || !p.mine(o) {
				continue
			}
			p.byKey["obj:"+o.Key] = len(p.out)
			p.out = append(p.out, Assignment{Object: o, Name: o.Name, Dropped: slices.Compact(slices.Sorted(slices.Values(o.Hosts)))})
		}
	}
	return p.out, failures
}

type planner struct {
	want  refresher.Input
	byKey map[string]int // assignment key → index in out
	out   []Assignment
}

// mine reports whether this process may rewrite o whole (whollyOurs says
// why not).
func (p *planner) mine(o *Object) bool {
	return o.Refused == nil && !o.Unknown && !slices.ContainsFunc(o.Hosts, func(h string) bool { return !p.want.Managed(h) })
}

// whollyOurs is nil when this process may rewrite o whole, else why not.
func (p *planner) whollyOurs(o *Object) error {
	switch {
	case o.Refused != nil:
		return refresher.Permanent(o.Refused)
	case o.Unknown:
		return refresher.Permanent(fmt.Errorf("%s exists but its content could not be read; it is not rewritten: check that this process may read it, or delete it", o.title()))
	}
	var foreign []string
	for _, h := range o.Hosts {
		if !p.want.Managed(h) {
			foreign = append(foreign, h)
		}
	}
	if len(foreign) > 0 {
		return refresher.Permanent(fmt.Errorf("%s exists and also holds hosts this process does not manage (%s); it is never rewritten (their passwords cannot be read back): remove them from it, move them to a credential of their own, or delete it",
			o.title(), HostList(foreign)))
	}
	return nil
}

func (o *Object) title() string {
	if o.Title != "" {
		return o.Title
	}
	return o.Name
}

// assign makes o (or a new object named name) hold t, and every other host o
// holds with its token in hand.
func (p *planner) assign(o *Object, name string, t refresher.Token) {
	key := "new:" + name
	if o != nil {
		key = "obj:" + o.Key
	}
	if i, ok := p.byKey[key]; ok {
		a := &p.out[i]
		if !slices.ContainsFunc(a.Tokens, func(x refresher.Token) bool { return x.Host == t.Host }) {
			a.Tokens = append(a.Tokens, t)
			a.Kept = slices.DeleteFunc(a.Kept, func(h string) bool { return h == t.Host })
			a.Dropped = slices.DeleteFunc(a.Dropped, func(h string) bool { return h == t.Host })
		}
		return
	}
	a := Assignment{Object: o, Name: name, Tokens: []refresher.Token{t}}
	if o != nil {
		for _, h := range o.Hosts {
			// An object may hold a host under two spellings (https://h and h):
			// it is assigned once.
			if h == t.Host || slices.Contains(a.Kept, h) || slices.ContainsFunc(a.Tokens, func(x refresher.Token) bool { return x.Host == h }) {
				continue
			}
			switch tok, ok := p.token(h); {
			case ok:
				a.Tokens = append(a.Tokens, tok)
			case p.want.TakeBack:
				a.Dropped = append(a.Dropped, h)
			default:
				a.Kept = append(a.Kept, h)
			}
		}
	}
	slices.SortFunc(a.Tokens, func(x, y refresher.Token) int { return cmp.Compare(x.Host, y.Host) })
	p.byKey[key] = len(p.out)
	p.out = append(p.out, a)
}

// has reports whether host is one of the tokens being written.
func (p *planner) has(host string) bool {
	_, ok := p.token(host)
	return ok
}

func (p *planner) token(host string) (refresher.Token, bool) {
	i := slices.IndexFunc(p.want.Tokens, func(t refresher.Token) bool { return t.Host == host })
	if i < 0 {
		return refresher.Token{}, false
	}
	return p.want.Tokens[i], true
}

// ErrKept is the error of a write that would have to replace entries whose
// token is not in hand.
var ErrKept = errors.New("it also holds a managed host whose token is not in hand; it is rewritten whole once that token is fetched again")

// HostList names at most a few hosts of a server-given list, each bounded, for
// a message.
func HostList(hosts []string) string {
	const most = 5
	var out []string
	for i, h := range hosts {
		if i == most {
			out = append(out, fmt.Sprintf("and %d more", len(hosts)-most))
			break
		}
		if len(h) > 80 {
			h = strings.ToValidUTF8(h[:80], "") + "…"
		}
		out = append(out, strconv.Quote(h))
	}
	return strings.Join(out, ",")
}
