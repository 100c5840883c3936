// Package ranchertest is an in-memory stand-in for the Rancher 1.x (Cattle) API,
// as much of it as registries and registry credentials need. Tests and --demo use
// it. It copies the behaviour recorded in docs/rancher-api.md, including
// the traps: the serverAddress filter is ignored, secretValue is write-only, /v1
// requires email, lists are paginated, links are lowercased and slashes escaped,
// and a duplicate serverAddress is refused with ServerAddressUsed.
package ranchertest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Key is an API key pair. Project is the environment the key acts on when a
// request names none; Projects lists every environment it may name (an
// environment key may name only its own).
//
// Projects may hold "*": every project the server has, now or later.
type Key struct {
	Access, Secret string
	Project        string
	Projects       []string
}

func (k Key) allows(project string) bool {
	return project == k.Project || slices.Contains(k.Projects, project) || slices.Contains(k.Projects, "*")
}

// Registry is a stored registry.
type Registry struct {
	ID, Project, ServerAddress, Name, Description, State string
}

// Credential is a stored credential, secret included, for assertions.
type Credential struct {
	ID, Project, RegistryID, PublicValue, SecretValue, Email, State string
	// Writes counts creates and updates of this credential.
	Writes int
}

// Server is the stand-in. Serve it with httptest.NewServer(s).
type Server struct {
	mu       sync.Mutex
	keys     []Key
	regs     map[string]*Registry // by id
	creds    map[string]*Credential
	nextID   int
	requests atomic.Int64
	projects []string                     // known environments / projects, in creation order
	system   map[string]bool              // Rancher 2.x System projects (name and label as Rancher gives them)
	notes    map[string]map[string]string // Rancher 2.x project annotations, by project
	dcreds   map[string]*DockerCred       // Rancher 2.x dockerCredentials by id
	r2       rancher2                     // server version, tokens, Kubernetes proxy

	intercept atomic.Pointer[func(http.ResponseWriter, *http.Request) bool]
}

// New returns an empty server that accepts the given keys.
func New(keys ...Key) *Server {
	return &Server{keys: keys, regs: map[string]*Registry{}, creds: map[string]*Credential{}, dcreds: map[string]*DockerCred{}, nextID: 1}
}

// SetIntercept installs a hook run before every request, after counting it. When
// it returns true it has answered and the server does nothing more; use it to
// inject faults. nil removes it.
func (s *Server) SetIntercept(f func(w http.ResponseWriter, r *http.Request) bool) {
	if f == nil {
		s.intercept.Store(nil)
		return
	}
	s.intercept.Store(&f)
}

// Requests returns how many requests were received.
func (s *Server) Requests() int64 { return s.requests.Load() }

// AddProject makes a Rancher 1.x environment or Rancher 2.x project exist, for
// project listings.
func (s *Server) AddProject(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.projects, id) {
		s.projects = append(s.projects, id)
	}
}

// AddSystemProject adds a Rancher 2.x project the way Rancher shows its System
// project: named "System", labelled authz.management.cattle.io/system-project.
func (s *Server) AddSystemProject(id string) {
	s.AddProject(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.system == nil {
		s.system = map[string]bool{}
	}
	s.system[id] = true
}

// AddRegistry stores a registry directly and returns its id. state "" is active.
func (s *Server) AddRegistry(project, serverAddress, state string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addRegistry(project, serverAddress, state).ID
}

func (s *Server) addRegistry(project, addr, state string) *Registry {
	if state == "" {
		state = "active"
	}
	r := &Registry{ID: fmt.Sprintf("1sp%d", s.nextID), Project: project, ServerAddress: addr, State: state}
	s.nextID++
	s.regs[r.ID] = r
	return r
}

// AddCredential stores a credential directly and returns its id. state "" is active.
func (s *Server) AddCredential(project, registryID, publicValue, secretValue, state string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addCredential(project, registryID, publicValue, secretValue, "", state).ID
}

func (s *Server) addCredential(project, registryID, pub, secret, email, state string) *Credential {
	if state == "" {
		state = "active"
	}
	c := &Credential{ID: fmt.Sprintf("1c%d", s.nextID), Project: project, RegistryID: registryID,
		PublicValue: pub, SecretValue: secret, Email: email, State: state}
	s.nextID++
	s.creds[c.ID] = c
	return c
}

// Registries returns copies of the stored registries of a project, by id.
func (s *Server) Registries(project string) []Registry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ofProject(s.regs, project, func(r *Registry) (string, string) { return r.Project, r.ID })
}

// Credentials returns copies of the stored credentials of a project, by id.
func (s *Server) Credentials(project string) []Credential {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ofProject(s.creds, project, func(c *Credential) (string, string) { return c.Project, c.ID })
}

// ofProject returns copies of the items of m in project (key tells an
// item's project and id), by id. The caller holds s.mu.
func ofProject[T any](m map[string]*T, project string, key func(*T) (project, id string)) []T {
	var out []T
	for _, v := range m {
		if p, _ := key(v); p == project {
			out = append(out, *v)
		}
	}
	slices.SortFunc(out, func(a, b T) int {
		_, ia := key(&a)
		_, ib := key(&b)
		return cmpID(ia, ib)
	})
	return out
}

// Credential returns a copy of one stored credential.
func (s *Server) Credential(id string) (Credential, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.creds[id]
	if !ok {
		return Credential{}, false
	}
	return *c, true
}

// idNum is the number in an id such as "1sp12" (Cattle orders lists by it).
func idNum(id string) int {
	i := strings.LastIndexFunc(id, func(r rune) bool { return r < '0' || r > '9' })
	n, _ := strconv.Atoi(id[i+1:])
	return n
}

func cmpID(a, b string) int { return idNum(a) - idNum(b) }

// ServeHTTP routes /<prefix>/{v1|v2-beta}[/projects/<id>]/<type>[/<id>].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if f := s.intercept.Load(); f != nil && (*f)(w, r) {
		return
	}
	key, ok := s.authenticate(r)
	kube := strings.HasPrefix(r.URL.Path, "/k8s/clusters/")
	if !ok && (kube || strings.Contains(r.URL.Path, "/v3")) {
		// Rancher 2.x's auth filter answers with its own shape: status as a string (docs/rancher-api.md#v3-authentication).
		writeAuthError(w)
		return
	}
	if kube {
		s.serveKube(w, r, key)
		return
	}
	if !ok {
		if r.Header.Get("X-API-No-Challenge") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="Enter API access key and secret key as username and password"`)
		}
		writeError(w, http.StatusUnauthorized, "Unauthorized", "Unauthorized", "")
		return
	}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if i := slices.Index(segs, "v3"); i >= 0 {
		s.serveV3(w, r, key, segs[i+1:])
		return
	}
	ver := slices.IndexFunc(segs, func(s string) bool { return s == "v1" || s == "v2-beta" })
	if ver < 0 {
		writeError(w, http.StatusNotFound, "Not Found", "Not Found", "")
		return
	}
	version, rest := segs[ver], segs[ver+1:]
	project := key.Project
	if len(rest) >= 2 && strings.EqualFold(rest[0], "projects") {
		// Cattle scopes only when a segment follows the id (docs/rancher-api.md#urls-and-scopes).
		if len(rest) == 2 {
			writeJSON(w, http.StatusOK, map[string]any{"id": rest[1], "type": "project", "links": map[string]any{}})
			return
		}
		project, rest = rest[1], rest[2:]
	}
	if h := r.Header.Get("X-API-Project-Id"); h != "" {
		project = h
	}
	if len(rest) == 1 && strings.EqualFold(rest[0], "projects") {
		s.listProjects(w, r, key, "")
		return
	}
	if !key.allows(project) {
		writeError(w, http.StatusForbidden, "Forbidden", "Forbidden", "")
		return
	}
	if len(rest) == 0 || len(rest) > 2 {
		writeError(w, http.StatusNotFound, "Not Found", "Not Found", "")
		return
	}
	typ := cattleType(rest[0])
	id := ""
	if len(rest) == 2 {
		id = rest[1]
	}
	h := handler{s: s, w: w, r: r, version: version, project: project, base: s.baseURL(r, segs[:ver+1], project)}
	switch {
	case typ == "registry" && id == "" && r.Method == http.MethodGet:
		h.listRegistries()
	case typ == "registry" && id == "" && r.Method == http.MethodPost:
		h.createRegistry()
	case typ == "registry" && id != "" && r.Method == http.MethodGet:
		h.getRegistry(id)
	case typ == "registrycredential" && id == "" && r.Method == http.MethodGet:
		h.listCredentials()
	case typ == "registrycredential" && id == "" && r.Method == http.MethodPost:
		h.createCredential()
	case typ == "registrycredential" && id != "" && r.Method == http.MethodPut:
		h.updateCredential(id)
	case typ == "registry" || typ == "registrycredential":
		writeError(w, http.StatusMethodNotAllowed, "Method not allowed", "Method not allowed", "")
	default:
		writeError(w, http.StatusNotFound, "Not Found", "Not Found", "")
	}
}

// cattleType maps a path's type name to its schema: case-insensitive, plural or
// singular (docs/rancher-api.md#urls-and-scopes).
func cattleType(name string) string {
	switch strings.ToLower(name) {
	case "registry", "registries":
		return "registry"
	case "registrycredential", "registrycredentials":
		return "registrycredential"
	}
	return ""
}

func (s *Server) authenticate(r *http.Request) (Key, bool) {
	a, sec, ok := r.BasicAuth()
	if bearer, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found {
		a, sec, ok = strings.Cut(bearer, ":")
	}
	if !ok {
		return Key{}, false
	}
	for _, k := range s.keys {
		if k.Access == a && k.Secret == sec {
			return k, true
		}
	}
	return Key{}, false
}

// baseURL is what Cattle puts in links: lowercased, scoped to the project.
func (s *Server) baseURL(r *http.Request, prefix []string, project string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return strings.ToLower(fmt.Sprintf("%s://%s/%s/projects/%s", scheme, r.Host, strings.Join(prefix, "/"), project))
}
