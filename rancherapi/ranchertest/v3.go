package ranchertest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// DockerCred is a stored Rancher 2.x project-scoped dockerCredential, passwords
// included, for assertions.
type DockerCred struct {
	ID, Project, Name string
	// Namespace is set for a namespacedDockerCredential.
	Namespace  string
	Registries map[string]Auth
	// Writes counts creates and updates.
	Writes int
}

// Auth is one registries entry.
type Auth struct{ Username, Password string }

// AddDockerCredential stores a dockerCredential directly and returns its id.
func (s *Server) AddDockerCredential(project, name string, regs map[string]Auth) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addDockerCred(project, name, regs).ID
}

func (s *Server) addDockerCred(project, name string, regs map[string]Auth) *DockerCred {
	_, p, _ := strings.Cut(project, ":")
	d := &DockerCred{ID: p + ":" + name, Project: project, Name: name, Registries: maps.Clone(regs)}
	s.dcreds[d.ID] = d
	return d
}

// AddNamespacedDockerCredential stores a namespacedDockerCredential of a
// namespace in the project and returns its id.
func (s *Server) AddNamespacedDockerCredential(project, namespace, name string, regs map[string]Auth) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := &DockerCred{ID: namespace + ":" + name, Project: project, Namespace: namespace, Name: name, Registries: maps.Clone(regs)}
	s.dcreds[d.ID] = d
	return d.ID
}

// DockerCredentials returns copies of a project's dockerCredentials, project
// scoped and namespaced, by name.
func (s *Server) DockerCredentials(project string) []DockerCred {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []DockerCred
	for _, d := range s.dcreds {
		if d.Project == project {
			c := *d
			c.Registries = maps.Clone(d.Registries)
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b DockerCred) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// serveV3 routes the norman API: /v3/projects, and
// /v3/project(s)/<c-x:p-y>/dockercredentials[/<id>] (docs/rancher-api.md#v3-endpoints).
func (s *Server) serveV3(w http.ResponseWriter, r *http.Request, key Key, rest []string) {
	if len(rest) == 1 && rest[0] == "projects" && r.Method == http.MethodGet {
		s.listProjects(w, r, key, "/v3")
		return
	}
	if len(rest) == 2 && rest[0] == "projects" && r.Method == http.MethodGet {
		s.getProject(w, key, rest[1])
		return
	}
	if s.serveRancher2(w, r, key, rest) {
		return
	}
	if len(rest) < 3 || (rest[0] != "project" && rest[0] != "projects") || cattleTypeV3(rest[2]) == "" || len(rest) > 4 {
		writeNormanError(w, http.StatusNotFound, "NotFound", "not found", "")
		return
	}
	project := rest[1]
	s.mu.Lock()
	known := slices.Contains(s.projects, project)
	s.mu.Unlock()
	switch {
	case !known:
		writeNormanError(w, http.StatusNotFound, "NotFound", "projects.management.cattle.io \""+project+"\" not found", "")
		return
	case !key.allows(project):
		writeNormanError(w, http.StatusForbidden, "PermissionDenied", "unauthorized", "")
		return
	}
	base := strings.ToLower(fmt.Sprintf("http://%s/v3/project/%s/", r.Host, project))
	namespaced := cattleTypeV3(rest[2]) == "namespacedDockerCredential"
	switch {
	case len(rest) == 3 && r.Method == http.MethodGet:
		s.listDockerCreds(w, r, project, base, namespaced)
	case len(rest) == 3 && r.Method == http.MethodPost && !namespaced:
		s.createDockerCred(w, r, project, base)
	case len(rest) == 4 && r.Method == http.MethodPut:
		s.updateDockerCred(w, r, project, rest[3], base, namespaced)
	default:
		writeNormanError(w, http.StatusMethodNotAllowed, "MethodNotAllow", "method not allowed", "")
	}
}

func cattleTypeV3(name string) string {
	switch strings.ToLower(strings.TrimSuffix(name, "s")) {
	case "dockercredential":
		return "dockerCredential"
	case "namespaceddockercredential":
		return "namespacedDockerCredential"
	}
	return ""
}

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request, key Key, prefix string) {
	s.mu.Lock()
	var items []map[string]any
	for _, p := range s.projects {
		if key.allows(p) {
			items = append(items, s.projectJSON(p))
		}
	}
	s.mu.Unlock()
	handler{s: s, w: w, r: r}.page("project", items)
}

// SetProjectAnnotations sets a Rancher 2.x project's annotations, as /v3
// shows them (nil removes them all).
func (s *Server) SetProjectAnnotations(project string, annotations map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.notes == nil {
		s.notes = map[string]map[string]string{}
	}
	s.notes[project] = maps.Clone(annotations)
}

// projectJSON is a project as /v3 shows it. Call with s.mu held.
func (s *Server) projectJSON(p string) map[string]any {
	item := map[string]any{"id": p, "type": "project", "name": "project " + p, "state": "active", "annotations": map[string]string{}}
	if s.system[p] {
		item["name"], item["labels"] = "System", map[string]string{"authz.management.cattle.io/system-project": "true"}
	}
	if a := s.notes[p]; a != nil {
		item["annotations"] = maps.Clone(a)
	}
	return item
}

// getProject answers GET /v3/projects/<id>.
func (s *Server) getProject(w http.ResponseWriter, key Key, project string) {
	s.mu.Lock()
	known := slices.Contains(s.projects, project)
	item := s.projectJSON(project)
	s.mu.Unlock()
	switch {
	case !known:
		writeNormanError(w, http.StatusNotFound, "NotFound", "projects.management.cattle.io \""+project+"\" not found", "")
	case !key.allows(project):
		writeNormanError(w, http.StatusForbidden, "PermissionDenied", "unauthorized", "")
	default:
		writeNormanJSON(w, http.StatusOK, item)
	}
}

func (s *Server) dockerCredJSON(d *DockerCred, base string) map[string]any {
	regs := map[string]any{}
	for h, a := range d.Registries { // password and auth are write-only (docs/rancher-api.md#dockercredentials)
		regs[h] = map[string]any{"username": a.Username}
	}
	typ, baseType, plural, ns := "dockerCredential", "secret", "dockerCredentials/", any(nil)
	if d.Namespace != "" {
		typ, baseType, plural, ns = "namespacedDockerCredential", "namespacedSecret", "namespacedDockerCredentials/", d.Namespace
	}
	self := base + plural + d.ID
	return map[string]any{
		"id": d.ID, "type": typ, "baseType": baseType, "name": d.Name, "projectId": d.Project,
		"namespaceId": ns, "registries": regs, "labels": map[string]any{"cattle.io/creator": "norman"}, "annotations": map[string]any{},
		"links": map[string]any{"self": self, "update": self, "remove": self},
	}
}

func (s *Server) listDockerCreds(w http.ResponseWriter, r *http.Request, project, base string, namespaced bool) {
	s.mu.Lock()
	var list []*DockerCred
	for _, d := range s.dcreds {
		if d.Project == project && (d.Namespace != "") == namespaced {
			list = append(list, d)
		}
	}
	slices.SortFunc(list, func(a, b *DockerCred) int { return strings.Compare(a.ID, b.ID) })
	items := make([]map[string]any, 0, len(list))
	for _, d := range list {
		items = append(items, s.dockerCredJSON(d, base))
	}
	s.mu.Unlock()
	handler{s: s, w: w, r: r}.page("dockerCredential", items)
}

type dockerCredBody struct {
	Name       *string `json:"name"`
	Registries map[string]struct {
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"registries"`
}

func (b dockerCredBody) auths() map[string]Auth {
	out := map[string]Auth{}
	for h, a := range b.Registries {
		out[h] = Auth{a.Username, a.Password}
	}
	return out
}

func (s *Server) createDockerCred(w http.ResponseWriter, r *http.Request, project, base string) {
	var in dockerCredBody
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil {
		writeNormanError(w, http.StatusUnprocessableEntity, "InvalidBodyContent", "", "")
		return
	}
	if in.Name == nil || *in.Name == "" {
		writeNormanError(w, http.StatusUnprocessableEntity, "MissingRequired", "", "name")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p, _ := strings.Cut(project, ":")
	if _, exists := s.dcreds[p+":"+*in.Name]; exists {
		writeNormanError(w, http.StatusConflict, "AlreadyExists", "secrets \""+*in.Name+"\" already exists", "")
		return
	}
	d := s.addDockerCred(project, *in.Name, in.auths())
	d.Writes++
	writeNormanJSON(w, http.StatusCreated, s.dockerCredJSON(d, base))
}

func (s *Server) updateDockerCred(w http.ResponseWriter, r *http.Request, project, id, base string, namespaced bool) {
	var in dockerCredBody
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil {
		writeNormanError(w, http.StatusUnprocessableEntity, "InvalidBodyContent", "", "")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.dcreds[id]
	if !ok || d.Project != project || (d.Namespace != "") != namespaced {
		writeNormanError(w, http.StatusNotFound, "NotFound", "not found", "")
		return
	}
	if in.Registries != nil { // a map is replaced wholesale, not merged (docs/rancher-api.md#dockercredential-updates)
		d.Registries = in.auths()
	}
	d.Writes++
	writeNormanJSON(w, http.StatusOK, s.dockerCredJSON(d, base))
}

func writeNormanError(w http.ResponseWriter, status int, code, message, field string) {
	body := map[string]any{"baseType": "error", "type": "error", "status": status, "code": code, "message": message}
	if field != "" {
		body["fieldName"] = field
	}
	writeNormanJSON(w, status, body)
}

func writeNormanJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
