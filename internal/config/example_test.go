package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// What `convene config example` prints is what `convene serve --config`
// reads: the demo topology, field for field.
func TestExampleParsesAsDemo(t *testing.T) {
	data, err := Example()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(data)
	if err != nil {
		t.Fatalf("the example does not parse: %v\n%s", err, data)
	}
	if a, b := marshal(t, got), marshal(t, Demo()); a != b {
		t.Fatalf("the example parses as\n%s\nnot the demo topology\n%s", a, b)
	}
}

// Every field of the configuration is explained in the example, and no
// explanation is left over from a field that is gone.
func TestExampleDocumentsEveryField(t *testing.T) {
	data, err := Example()
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	paths := map[string]bool{}
	fieldPaths(reflect.TypeOf(Config{}), "", paths)
	var missing []string
	for p := range paths {
		doc, ok := fieldDocs[p]
		if !ok {
			missing = append(missing, p)
			continue
		}
		if !strings.Contains(text, commented(doc)) {
			t.Errorf("the explanation of %s is not in the example", p)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("fields without an explanation in fieldDocs (example.go): %s", strings.Join(missing, ", "))
	}
	for p := range fieldDocs {
		if !paths[p] {
			t.Errorf("fieldDocs explains %s, which is no field", p)
		}
	}
}

// The commented example tokens, uncommented, are one token of each role:
// refused while they hold the placeholder, accepted with real secrets.
func TestExampleTokens(t *testing.T) {
	data, err := Example()
	if err != nil {
		t.Fatal(err)
	}
	// Do as the example says: remove the "# " of each line after its
	// introduction.
	var lines []string
	examples, below := 0, false
	for _, line := range strings.Split(string(data), "\n") {
		rest, commentedOut := strings.CutPrefix(line, "    # ")
		switch {
		case below && commentedOut:
			lines = append(lines, "    "+rest)
			examples++
			continue
		case strings.Contains(line, "starts each line below."):
			below = true
		default:
			below = below && commentedOut
		}
		lines = append(lines, line)
	}
	if examples == 0 {
		t.Fatal("no example tokens in the example")
	}
	uncommented := strings.Join(lines, "\n")
	if _, err := Parse([]byte(uncommented)); err == nil || !strings.Contains(err.Error(), "placeholder") {
		t.Fatalf("the example tokens with their placeholder: err = %v, want a refusal\n%s", err, uncommented)
	}
	n := 0
	withSecrets := strings.NewReplacer(ExampleTokenSecret, "").Replace(uncommented)
	for strings.Contains(withSecrets, "token: \n") {
		n++
		withSecrets = strings.Replace(withSecrets, "token: \n", fmt.Sprintf("token: secret-%02d-0123456789abcdef\n", n), 1)
	}
	c, err := Parse([]byte(withSecrets))
	if err != nil {
		t.Fatalf("the example tokens with secrets: %v\n%s", err, withSecrets)
	}
	roles := map[string]bool{}
	for _, tok := range c.API.Tokens {
		roles[tok.Role] = true
	}
	for _, r := range Roles {
		if !roles[r] {
			t.Errorf("the example has no %s token: %+v", r, c.API.Tokens)
		}
	}
}

// fieldPaths adds the key path of every field reachable from t.
func fieldPaths(t reflect.Type, path string, out map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		fieldPaths(t.Elem(), path+"[]", out)
	case reflect.Struct:
		if t.PkgPath() != reflect.TypeOf(Config{}).PkgPath() {
			return // a value such as time.Time, not a section
		}
		for i := 0; i < t.NumField(); i++ {
			name := yamlName(t.Field(i))
			if name == "" {
				continue
			}
			p := joinPath(path, name)
			out[p] = true
			fieldPaths(t.Field(i).Type, p, out)
		}
	}
}

// commented is a doc's first line as the example prints it.
func commented(doc string) string {
	first, _, _ := strings.Cut(doc, "\n")
	return "# " + first
}

func marshal(t *testing.T, c *Config) string {
	t.Helper()
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
