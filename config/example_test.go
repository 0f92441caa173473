package config

import (
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const examplePath = "../config.example.yaml"

func TestExampleLoadsAndValidates(t *testing.T) {
	secret, token := strings.Repeat("s", 40), strings.Repeat("t", 40)
	t.Setenv("KEYGATE_KEY_SECRET", secret)
	t.Setenv("KEYGATE_ADMIN_TOKEN", token)
	t.Setenv("KEYGATE_DATABASE_URL", "") // the example defaults it to empty
	c, err := Load(examplePath)
	if err != nil {
		t.Fatalf("Load(%s): %v", examplePath, err)
	}
	if errs := c.Validate(); errs != nil {
		t.Fatalf("Validate(): %v", Errors(errs))
	}

	// The example documents the defaults: apart from the secrets and the route, it is Default().
	want := Default()
	want.Keys.Secret = Secret(secret)
	want.Admin.Tokens = []AdminToken{{Name: "ops", Token: Secret(token)}}
	got := *c
	if len(got.Routes) != 1 {
		t.Fatalf("example routes = %d, want 1", len(got.Routes))
	}
	r := got.Routes[0]
	got.Routes = nil
	normaliseEmpty(&got)
	normaliseEmpty(&want)
	if !reflect.DeepEqual(got, want) {
		a, _ := yaml.Marshal(got)
		b, _ := yaml.Marshal(want)
		t.Errorf("example differs from Default():\n got %s\nwant %s", a, b)
	}
	if r.Name != "legacy" || r.Match.PathPrefix != "/api/" || r.Upstream.String() != "http://127.0.0.1:9000" ||
		r.Auth != DefaultRoute().Auth || r.Timeout != DefaultRoute().Timeout {
		t.Errorf("example route = %+v, want legacy /api/ → http://127.0.0.1:9000 with the route defaults", r)
	}
}

// normaliseEmpty makes empty slices nil, so that "[]" in the file equals a default of none.
func normaliseEmpty(c *Config) {
	v := reflect.ValueOf(c).Elem()
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i))
				}
			}
		case reflect.Slice:
			if v.Len() == 0 && !v.IsNil() {
				v.Set(reflect.Zero(v.Type()))
			}
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i))
			}
		}
	}
	walk(v)
}

// TestExampleHasEveryKey keeps config.example.yaml from drifting: every yaml key of the
// Config struct tree appears in it at its place, and it has no key the schema lacks.
func TestExampleHasEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	inFile := map[string]bool{}
	nodeKeys(doc.Content[0], "", inFile)
	inSchema := map[string]bool{}
	typeKeys(reflect.TypeOf(Config{}), "", inSchema)

	var missing, extra []string
	for k := range inSchema {
		if !inFile[k] {
			missing = append(missing, k)
		}
	}
	for k := range inFile {
		if !inSchema[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("config.example.yaml lacks %q", missing)
	}
	if len(extra) > 0 {
		t.Errorf("config.example.yaml has keys the schema lacks: %q", extra)
	}
	if len(inSchema) < 70 {
		t.Errorf("schema walk found %d keys, want all of them (>= 70)", len(inSchema))
	}
}

func nodeKeys(n *yaml.Node, path string, out map[string]bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(path, n.Content[i].Value)
			out[p] = true
			nodeKeys(n.Content[i+1], p, out)
		}
	case yaml.SequenceNode:
		for _, e := range n.Content {
			nodeKeys(e, path+"[]", out)
		}
	}
}

func typeKeys(t reflect.Type, path string, out map[string]bool) {
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		for name, f := range yamlFields(t) {
			p := join(path, name)
			out[p] = true
			typeKeys(f.Type, p, out)
		}
	case reflect.Slice:
		typeKeys(t.Elem(), path+"[]", out)
	}
}
