package kubesecret

import corev1 "k8s.io/api/core/v1"

// ApplyEdit is what e sets in s, for tests of the formats without a server.
func ApplyEdit(e Edit, s *corev1.Secret) (map[string][]byte, error) { return e.set(s) }
