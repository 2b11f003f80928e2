package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// pageNames are the page templates; each is parsed with the layout.
var pageNames = []string{"login", "overview", "platforms", "confirm", "nodes", "conferences", "conference",
	"licences", "calls", "calllog", "alarms", "hosts"}

// triggers are the events that refresh each page's live part: the
// stream's event kinds up to their first dot.
var triggers = map[string][]string{
	"overview":    {"conference", "node", "room", "platform", "call", "alarm"},
	"platforms":   {"conference", "room", "platform", "node"},
	"nodes":       {"node", "conference", "room"},
	"conferences": {"conference"},
	"conference":  {"conference", "breakout"},
	"licences":    {"licence", "conference"},
	"calls":       {"call"},
	"alarms":      {"alarm"},
	"hosts":       {"host", "alarm"},
}

var funcs = template.FuncMap{
	"pct": func(a, b int) int {
		if b <= 0 {
			return 0
		}
		return min(100, max(0, a*100/b))
	},
	"pct64": func(a, b int64) int64 {
		if b <= 0 {
			return 0
		}
		return min(100, max(0, a*100/b))
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.Format("2006-01-02 15:04:05 MST")
	},
	"whenp": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "—"
		}
		return t.Format("2006-01-02 15:04:05 MST")
	},
	"dur":      func(sec int64) string { return (time.Duration(sec) * time.Second).String() },
	"add":      func(a, b int) int { return a + b },
	"join":     strings.Join,
	"navPages": func() []navPage { return nav },
}

// navPage is an entry of the console's menu.
type navPage struct{ Name, Path, Label string }

var nav = []navPage{
	{"overview", "/", "Overview"}, {"platforms", "/platforms", "Platforms"}, {"nodes", "/nodes", "Nodes"},
	{"conferences", "/conferences", "Conferences"}, {"licences", "/licences", "Licences"}, {"calls", "/calls", "Calls"},
	{"alarms", "/alarms", "Alarms"}, {"hosts", "/hosts", "Hosts"},
}

func parsePages() (map[string]*template.Template, error) {
	out := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.tmpl", "templates/"+name+".tmpl")
		if err != nil {
			return nil, fmt.Errorf("console: page %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// view is what every page template gets.
type view struct {
	Name  string
	Title string
	// Holder and Role name the session's token; CanAct and CanOperate
	// decide which action buttons show.
	Holder     string
	Role       string
	CanAct     bool
	CanOperate bool
	CSRF       string
	Flash      string
	// Self is the page's own address, which its live part reloads from;
	// Triggers the htmx events that reload it.
	Self     string
	Triggers string
	// Cats are the event categories (kinds up to the first dot) that
	// reload the live part, for the page's script.
	Cats string
	Data any
}

// render writes page name: the whole page, or only its live part for an
// htmx request.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, s *session, title string, data any) {
	v := view{Name: name, Title: title, Self: r.URL.RequestURI(), Data: data}
	var trig []string
	for _, t := range triggers[name] {
		trig = append(trig, "cv-"+t+" from:body")
	}
	v.Triggers = strings.Join(trig, ", ")
	v.Cats = strings.Join(triggers[name], " ")
	if s != nil {
		v.Holder, v.Role, v.CanAct, v.CanOperate, v.CSRF = s.holder, s.role, s.CanAct(), s.CanOperate(), s.csrf
		if r.Header.Get("HX-Request") == "" {
			v.Flash = s.takeFlash()
		}
	}
	which := "layout"
	if r.Header.Get("HX-Request") != "" && s != nil {
		which = "live"
	}
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, which, v); err != nil {
		c.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "INTERNAL: the page could not be drawn; reload it", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// back redirects a form post to the page it came from (its "back" field,
// a path of this site), with msg kept for that page.
func back(w http.ResponseWriter, r *http.Request, s *session, fallback, msg string) {
	if msg != "" {
		s.setFlash(msg)
	}
	to := r.PostFormValue("back")
	if !strings.HasPrefix(to, "/") || strings.HasPrefix(to, "//") || strings.HasPrefix(to, "/\\") {
		to = fallback
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}
