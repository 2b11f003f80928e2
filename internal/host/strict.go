package host

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ConfigError is one mistake in a host file: where it is and what to do.
type ConfigError struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Path    string `json:"path"`
	Problem string `json:"problem"`
	Fix     string `json:"fix,omitempty"`
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Problem)
	if e.Fix != "" {
		b.WriteString("; " + e.Fix)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrConfig }

// ConfigErrors are every mistake found in a host file, in file order.
type ConfigErrors []*ConfigError

func (es ConfigErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return CodeHostConfig + ": " + strings.Join(lines, "\n")
}

// Is makes errors.Is(err, ErrConfig) true.
func (es ConfigErrors) Is(target error) bool { return target == ErrConfig }

// problems collects the mistakes of one file.
type problems struct {
	file  string
	list  ConfigErrors
	lines map[int]string // line → the deepest key path seen on it
	at    map[string]int // key path → its line
}

func newProblems(file string) *problems {
	return &problems{file: file, lines: map[int]string{}, at: map[string]int{}}
}

// saw records that the key at path is on line.
func (p *problems) saw(line int, path string) {
	p.lines[line] = path
	if _, ok := p.at[path]; !ok {
		p.at[path] = line
	}
}

func (p *problems) add(line int, path, problem, fix string) {
	p.list = append(p.list, &ConfigError{File: p.file, Line: line, Path: path, Problem: problem, Fix: fix})
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	sort.SliceStable(p.list, func(i, j int) bool { return p.list[i].Line < p.list[j].Line })
	return p.list
}

var (
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	nodeType        = reflect.TypeOf(yaml.Node{})
	timeType        = reflect.TypeOf(time.Time{})
)

// decodeStrict decodes node into ptr (which holds the defaults), refusing
// any key ptr's type does not have. Problems name path and line.
func decodeStrict(node *yaml.Node, ptr any, path string, p *problems) {
	if node == nil {
		return
	}
	before := len(p.list)
	checkKnown(node, reflect.TypeOf(ptr), path, p)
	if len(p.list) > before {
		return
	}
	if err := node.Decode(ptr); err != nil {
		p.typeError(err, node, path)
	}
}

var lineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// typeError turns yaml's "line N: cannot unmarshal ..." into problems with
// the key path of that line.
func (p *problems) typeError(err error, node *yaml.Node, path string) {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		p.add(node.Line, path, err.Error(), "fix the value")
		return
	}
	for _, msg := range te.Errors {
		line, where := node.Line, path
		if m := lineRE.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
			if k, ok := p.lines[line]; ok {
				where = k
			}
		}
		p.add(line, where, msg, "write a value of that type")
	}
}

// checkKnown walks node against the Go type it will be decoded into and
// reports every key that type does not have, with suggestions.
func checkKnown(node *yaml.Node, t reflect.Type, path string, p *problems) {
	for node.Kind == yaml.AliasNode && node.Alias != nil {
		node = node.Alias
	}
	p.saw(node.Line, path)
	if node.Kind == yaml.ScalarNode && node.Tag == "!!null" {
		return
	}
	for t.Kind() == reflect.Pointer {
		if t.Implements(unmarshalerType) {
			return
		}
		t = t.Elem()
	}
	if t == nodeType || t == timeType || t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if node.Kind != yaml.MappingNode {
			p.add(node.Line, path, "expected a mapping of keys", "write it as key: value lines ("+keyList(structKeys(t))+")")
			return
		}
		fields, inline := structFields(t)
		eachPair(node, func(k, v *yaml.Node) {
			kp := join(path, k.Value)
			p.saw(k.Line, kp)
			if ft, ok := fields[k.Value]; ok {
				checkKnown(v, ft, kp, p)
				return
			}
			if inline != nil {
				checkKnown(v, inline.Elem(), kp, p)
				return
			}
			p.add(k.Line, kp, "unknown key", unknownFix(k.Value, structKeys(t)))
		})
	case reflect.Map:
		if node.Kind != yaml.MappingNode {
			p.add(node.Line, path, "expected a mapping", "write it as key: value lines")
			return
		}
		eachPair(node, func(k, v *yaml.Node) {
			kp := join(path, k.Value)
			p.saw(k.Line, kp)
			checkKnown(v, t.Elem(), kp, p)
		})
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return
		}
		if node.Kind != yaml.SequenceNode {
			p.add(node.Line, path, "expected a list", "write it as [a, b] or as lines starting with '- '")
			return
		}
		for i, item := range node.Content {
			checkKnown(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), p)
		}
	}
}

// eachPair calls f for each key and value of a mapping, following merge
// keys (<<) into the mappings they merge.
func eachPair(node *yaml.Node, f func(k, v *yaml.Node)) {
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		if k.Tag == "!!merge" || k.Value == "<<" {
			for v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			switch v.Kind {
			case yaml.MappingNode:
				eachPair(v, f)
			case yaml.SequenceNode:
				for _, m := range v.Content {
					for m.Kind == yaml.AliasNode && m.Alias != nil {
						m = m.Alias
					}
					eachPair(m, f)
				}
			}
			continue
		}
		f(k, v)
	}
}

// structFields maps the YAML keys of a struct to their types, as yaml.v3
// names them (the tag, else the field name in lower case), with embedded
// ",inline" structs merged; inline is the type of an ",inline" map.
func structFields(t reflect.Type) (fields map[string]reflect.Type, inline reflect.Type) {
	fields = map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch ft.Kind() {
			case reflect.Struct:
				sub, subInline := structFields(ft)
				for k, v := range sub {
					fields[k] = v
				}
				if subInline != nil {
					inline = subInline
				}
			case reflect.Map:
				inline = ft
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields, inline
}

// structKeys lists a struct's YAML keys, sorted.
func structKeys(t reflect.Type) []string {
	fields, _ := structFields(t)
	return keysOf(fields)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func keyList(keys []string) string {
	if len(keys) == 0 {
		return "it takes no keys"
	}
	return "keys: " + strings.Join(keys, ", ")
}

// unknownFix says what to do about an unknown key.
func unknownFix(key string, known []string) string {
	if s := suggest(key, known); s != "" {
		return fmt.Sprintf("did you mean %q? (%s)", s, keyList(known))
	}
	if len(known) == 0 {
		return "remove it: this section takes no keys"
	}
	return "remove it or use one of the " + keyList(known)
}

// didYouMean is ": did you mean "x"?" for the nearest candidate, or "".
func didYouMean(word string, candidates []string) string {
	if s := suggest(word, candidates); s != "" {
		return fmt.Sprintf(": did you mean %q?", s)
	}
	return ""
}

// suggest is the candidate nearest to word when it is near enough to be a
// slip: a few edits away, or the same ignoring case.
func suggest(word string, candidates []string) string {
	best, bestD := "", 1<<30
	limit := 2
	if len(word) <= 4 {
		limit = 1
	}
	for _, c := range candidates {
		d := editDistance(strings.ToLower(word), strings.ToLower(c))
		if d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	if best != "" && bestD <= limit {
		return best
	}
	return ""
}

// editDistance counts the insertions, deletions, substitutions and swaps
// of neighbours that turn a into b (optimal string alignment).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
