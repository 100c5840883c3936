package settings

import (
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/setup"
)

// WriteSections prints each section as --help shows it: its title, what the
// mode requires, every setting with its flag, variable and one default, then
// its notes.
func WriteSections(w io.Writer, sections []setup.Section) {
	for _, sec := range sections {
		fmt.Fprintf(w, "%s\n", sec.Title)
		if sec.Requires != "" {
			fmt.Fprintf(w, "  Requires: %s\n", sec.Requires)
		}
		for _, s := range Expand([]setup.Section{sec}) {
			writeSetting(w, s)
		}
		for _, n := range sec.Notes {
			fmt.Fprintf(w, "  %s\n", n)
		}
		fmt.Fprintln(w)
	}
}

func writeSetting(w io.Writer, s setup.Setting) {
	arg := " VALUE"
	if s.Bool {
		arg = ""
	}
	env := "env " + s.Env
	switch {
	case s.FlagOnly:
		env = "flag only"
	case s.Alias != "":
		env += ", or " + s.Alias + " when " + s.Env + " is unset"
	}
	def := "default " + DefaultHelp(s)
	if strings.HasPrefix(s.DefaultHelp, "required") {
		def = s.DefaultHelp
	}
	fmt.Fprintf(w, "  --%s%s\n      %s (%s; %s)\n", FlagName(s), arg, s.Usage, env, def)
}

// Fields are the settings of sections as the start-up line logs them, by
// variable in lower case: those given or with a default. A Secret one is
// REDACTED, and a URL loses its user information, query and fragment.
func (v *Values) Fields(sections ...setup.Section) logrus.Fields {
	f := logrus.Fields{}
	for _, s := range Expand(sections) {
		val := v.Get(s.Env)
		switch {
		case s.FlagOnly || (val == "" && !v.IsSet(s.Env)):
			continue
		case s.Secret && val != "":
			val = "REDACTED"
		default:
			val = safeURL(val)
		}
		f[strings.ToLower(s.Env)] = val
	}
	return f
}

// safeURL strips what may be secret from a value that is a URL.
func safeURL(v string) string {
	if !strings.Contains(v, "://") {
		return v
	}
	u, err := url.Parse(v)
	if err != nil {
		return "(not a URL)"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	u.RawQuery, u.Fragment, u.RawFragment = "", "", ""
	return u.String()
}
