package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// FieldError is one problem with one configuration field. Path is the field path
// ("routes[1].upstream", indexes from 0), empty for a problem with the whole file.
type FieldError struct {
	Path    string
	Message string

	line int // where Parse found it, for ordering; 0 if unknown
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// Errors is every problem found in a configuration, reported at once.
type Errors []error

// Error joins the problems, one per line.
func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap lets errors.Is and errors.As see every problem.
func (es Errors) Unwrap() []error { return es }

// Load reads the file at path and parses it with Parse. It reports syntax, type and
// unknown-key problems only; call Validate on the result for the rest.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data)
}

// Parse decodes a YAML configuration over Default(). In scalar values (never keys),
// ${VAR} and ${VAR:-default} are replaced from the environment (the default applies
// when VAR is unset or empty; $${ writes a literal ${). Unknown keys are errors; an
// admin token given as a bare string is named token-N by its position (from 1); a
// route takes DefaultRoute's values for the keys it leaves out. Every problem found
// is returned at once as Errors, each naming its field path; no message holds the
// value of a Secret field. Parse does not call Validate.
func Parse(data []byte) (*Config, error) {
	return parse(data, os.LookupEnv)
}

func parse(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &cfg, nil // an empty file: all defaults
		}
		return nil, Errors{&FieldError{Message: err.Error()}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, Errors{&FieldError{Message: "the file holds more than one YAML document"}}
	}

	w := newWalker(lookup)
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return &cfg, nil // a file of comments only
	}
	w.walk(root, reflect.TypeOf(cfg), "")

	if err := root.Decode(&cfg); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			w.errs = append(w.errs, &FieldError{Message: err.Error()})
		} else {
			for i, msg := range te.Errors {
				if i == maxDecodeErrors {
					w.errs = append(w.errs, &FieldError{Message: fmt.Sprintf("... and %d more problems of the same kind", len(te.Errors)-i), line: 1 << 30})
					break
				}
				w.decodeError(msg)
			}
		}
	}
	w.applyRouteDefaults(&cfg)

	if len(w.errs) > 0 {
		sort.SliceStable(w.errs, func(i, j int) bool { return errLine(w.errs[i]) < errLine(w.errs[j]) })
		if len(w.errs) > maxErrors {
			n := len(w.errs) - maxErrors
			w.errs = append(w.errs[:maxErrors], &FieldError{Message: fmt.Sprintf("... and %d more problems", n)})
		}
		return nil, w.redacted()
	}
	return &cfg, nil
}

// maxDecodeErrors bounds the decoder's problems that are mapped back to paths (each
// costs a scan of its line), so that a hostile file cannot make Parse slow.
const maxDecodeErrors = 100

// maxErrors bounds the problems Parse returns; no file written by hand has more.
const maxErrors = 200

var (
	secretType      = reflect.TypeOf(Secret(""))
	adminTokensType = reflect.TypeOf([]AdminToken(nil))
	routesType      = reflect.TypeOf([]Route(nil))
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

// located is a node the walk passed, with its field path.
type located struct {
	path string
	node *yaml.Node
}

type visit struct {
	node *yaml.Node
	typ  reflect.Type
}

// walker does the one pass over the node tree that STYLE.md's "Library facts" #1
// asks for: ${VAR} expansion in scalar values, unknown and duplicate keys, bare admin
// tokens, and the line → field path map for yaml.v3's decode errors.
type walker struct {
	lookup    func(string) (string, bool)
	errs      Errors
	byLine    map[int][]located
	byPos     map[[2]int]string
	secret    map[string]bool // paths whose values are secrets
	secrets   []string        // secret values seen, scrubbed from messages
	expanded  map[*yaml.Node]bool
	visited   map[visit]bool
	routeKeys []map[string]bool // keys present in each route
	failed    map[string]bool   // paths already reported by the walk
}

func newWalker(lookup func(string) (string, bool)) *walker {
	return &walker{
		lookup:   lookup,
		byLine:   map[int][]located{},
		byPos:    map[[2]int]string{},
		secret:   map[string]bool{},
		expanded: map[*yaml.Node]bool{},
		visited:  map[visit]bool{},
		failed:   map[string]bool{},
	}
}

func (w *walker) errorf(n *yaml.Node, path, format string, args ...any) {
	w.failed[path] = true
	w.errs = append(w.errs, &FieldError{Path: path, Message: fmt.Sprintf(format, args...), line: n.Line})
}

func (w *walker) record(n *yaml.Node, path string) {
	w.byLine[n.Line] = append(w.byLine[n.Line], located{path, n})
	k := [2]int{n.Line, n.Column}
	if _, ok := w.byPos[k]; !ok {
		w.byPos[k] = path
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// walk visits n, to be decoded into a value of type t at path, and returns the keys
// present when n is a mapping for a struct.
func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) map[string]bool {
	if n == nil {
		return nil
	}
	w.record(n, path)
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return nil
		}
		n = n.Alias
		// An anchored node reused at another place is walked once per type, so
		// that alias chains cannot blow the walk up; its paths stay those of the anchor.
		v := visit{n, t}
		if w.visited[v] {
			return nil
		}
		w.visited[v] = true
		return w.walk(n, t, path)
	}
	if t == secretType || t == adminTokensType || t == reflect.TypeOf([]Secret(nil)) || t == reflect.TypeOf(AdminToken{}) {
		w.secret[path] = true
	}
	if t == adminTokensType && n.Kind == yaml.SequenceNode {
		w.normaliseTokens(n)
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		w.leaf(n, path)
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind == yaml.MappingNode {
			return w.mapping(n, t, path)
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for i, e := range n.Content {
				keys := w.walk(e, t.Elem(), index(path, i))
				if t == routesType {
					w.routeKeys = append(w.routeKeys, keys)
				}
			}
			return nil
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				w.walk(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))
			}
			return nil
		}
	case reflect.Pointer:
		return w.walk(n, t.Elem(), path)
	}
	// A leaf value, or a node of the wrong kind that the decoder will report.
	w.leaf(n, path)
	return nil
}

// leaf expands the scalars of a value decoded by a leaf type (a rate list, a CIDR
// list, a duration, a string...), recording the path of each list element.
func (w *walker) leaf(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		w.expand(n, path)
	case yaml.SequenceNode:
		for i, e := range n.Content {
			p := index(path, i)
			w.record(e, p)
			if w.secret[path] {
				w.secret[p] = true
			}
			if e = resolveAlias(e); e.Kind == yaml.ScalarNode {
				w.expand(e, p)
			}
		}
	}
}

// mapping checks the keys of n against the yaml tags of struct type t and walks
// the values. It returns the keys present, merged ("<<") ones included.
func (w *walker) mapping(n *yaml.Node, t reflect.Type, path string) map[string]bool {
	fields := yamlFields(t)
	present := map[string]bool{}
	firstLine := map[string]int{}
	// Keys reported here are dropped from the node, so that the decoder neither
	// reports them again nor spends its quadratic duplicate-key check on them.
	kept := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolveAlias(n.Content[i]), n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			w.merge(v, t, path, present)
			kept = append(kept, n.Content[i], v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			w.errorf(k, path, "line %d: keys must be strings, got %s", k.Line, kindName(k))
			continue
		}
		p := join(path, k.Value)
		w.record(k, p)
		f, ok := fields[k.Value]
		if !ok {
			w.errorf(k, p, "unknown field")
			continue
		}
		if line, dup := firstLine[k.Value]; dup {
			w.errorf(k, p, "duplicate key (first at line %d)", line)
			continue
		}
		firstLine[k.Value] = k.Line
		present[k.Value] = true
		kept = append(kept, n.Content[i], v)
		w.walk(v, f.Type, p)
	}
	n.Content = kept
	return present
}

// merge walks the value of a "<<" key: a mapping, or a list of them.
func (w *walker) merge(v *yaml.Node, t reflect.Type, path string, present map[string]bool) {
	v = resolveAlias(v)
	var maps []*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		maps = []*yaml.Node{v}
	case yaml.SequenceNode:
		for _, e := range v.Content {
			maps = append(maps, resolveAlias(e))
		}
	}
	for _, m := range maps {
		if m == nil || m.Kind != yaml.MappingNode {
			continue // the decoder reports it
		}
		vis := visit{m, t}
		if w.visited[vis] {
			// Still count its keys as present.
			for i := 0; i < len(m.Content); i += 2 {
				present[resolveAlias(m.Content[i]).Value] = true
			}
			continue
		}
		w.visited[vis] = true
		for k := range w.mapping(m, t, path) {
			present[k] = true
		}
	}
}

// normaliseTokens rewrites a bare string element of admin.tokens into
// {name: token-N, token: <string>}, N its position from 1.
func (w *walker) normaliseTokens(n *yaml.Node) {
	for i, e := range n.Content {
		if r := resolveAlias(e); r == nil || r.Kind != yaml.ScalarNode || r.ShortTag() == "!!null" {
			continue
		}
		n.Content[i] = &yaml.Node{
			Kind: yaml.MappingNode, Tag: "!!map", Line: e.Line, Column: e.Column,
			Content: []*yaml.Node{
				{Kind: yaml.ScalarNode, Tag: "!!str", Value: "name", Line: e.Line, Column: e.Column},
				{Kind: yaml.ScalarNode, Tag: "!!str", Value: "token-" + strconv.Itoa(i+1), Line: e.Line, Column: e.Column},
				{Kind: yaml.ScalarNode, Tag: "!!str", Value: "token", Line: e.Line, Column: e.Column},
				e,
			},
		}
	}
}

// expand replaces ${VAR} references in a scalar value, once per node. An unquoted
// scalar loses its tag afterwards, so that "port: ${PORT}" still decodes as a number.
func (w *walker) expand(n *yaml.Node, path string) {
	if w.expanded[n] {
		return
	}
	w.expanded[n] = true
	if strings.Contains(n.Value, "$") {
		v, changed, err := expandEnv(n.Value, w.lookup)
		if err != nil {
			w.errorf(n, path, "%v", err)
			// Decode it as null, so that the decoder adds no second error here.
			n.Value, n.Tag, n.Style = "", "!!null", 0
			return
		}
		if changed {
			n.Value = v
			if n.Style&(yaml.TaggedStyle|yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
				n.Tag = ""
			}
		}
	}
	if w.secret[path] && n.Value != "" {
		w.secrets = append(w.secrets, n.Value)
	}
}

// expandEnv replaces ${NAME} and ${NAME:-default} in s. An unset NAME without a
// default is an error naming NAME; no error holds a value.
func expandEnv(s string, lookup func(string) (string, bool)) (string, bool, error) {
	var b strings.Builder
	changed := false
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			changed = true
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte(s[i])
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", false, errors.New("unterminated ${ (want ${NAME} or ${NAME:-default}; write $${ for a literal ${)")
		}
		expr := s[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			return "", false, errors.New("invalid variable reference (want ${NAME} or ${NAME:-default}, NAME of letters, digits and _)")
		}
		v, ok := lookup(name)
		if !ok || v == "" {
			if hasDef {
				v = def
			} else if !ok {
				return "", false, fmt.Errorf("environment variable %s is not set (use ${%s:-} for an empty default)", name, name)
			}
		}
		b.WriteString(v)
		i += 2 + end + 1
		changed = true
	}
	return b.String(), changed, nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// yamlFields maps the yaml key names of struct type t to its fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f
	}
	return out
}

var (
	posMsg       = regexp.MustCompile(`^line (\d+) column (\d+): (.*)$`)
	dupMsg       = regexp.MustCompile(`^line \d+: mapping key .* already defined at line \d+$`)
	unmarshalMsg = regexp.MustCompile("^line (\\d+): cannot unmarshal (!!\\w+)(?: `(.*)`)? into (.+)$")
	lineMsg      = regexp.MustCompile(`^line (\d+): (.*)$`)
)

// decodeError turns one of yaml.v3's decode messages into a FieldError with a path.
func (w *walker) decodeError(msg string) {
	if m := posMsg.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		col, _ := strconv.Atoi(m[2])
		path, ok := w.byPos[[2]int{line, col}]
		if !ok {
			path = w.pathOnLine(line, "", "")
		}
		w.add(path, m[3], line)
		return
	}
	if dupMsg.MatchString(msg) {
		return // the walk reported it with its path
	}
	if m := unmarshalMsg.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		path := w.pathOnLine(line, m[2], m[3])
		want := typeName(m[4])
		var got string
		switch {
		case m[2] == "!!seq":
			got = "a list"
		case m[2] == "!!map":
			got = "a mapping"
		case w.secret[path]:
			got = "a string"
		default:
			got = strconv.Quote(m[3])
		}
		w.addSafe(path, "want "+want+", got "+got, line)
		return
	}
	if m := lineMsg.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		w.add(w.pathOnLine(line, "", ""), m[2], line)
		return
	}
	w.add("", msg, 0)
}

// add records a decode problem whose message may quote the value: at a secret's
// path only the fact that the value is invalid is kept.
func (w *walker) add(path, msg string, line int) {
	if w.secret[path] {
		msg = "invalid value"
	}
	w.addSafe(path, msg, line)
}

// addSafe records a decode problem whose message quotes no secret.
func (w *walker) addSafe(path, msg string, line int) {
	if path != "" && w.failed[path] {
		return
	}
	if path == "" && line > 0 {
		msg = fmt.Sprintf("line %d: %s", line, msg)
	}
	w.errs = append(w.errs, &FieldError{Path: path, Message: msg, line: line})
}

// pathOnLine finds the field a decode error on line refers to: of the nodes on that
// line, the one of the kind named by tag, whose value starts as yaml.v3 quotes it.
func (w *walker) pathOnLine(line int, tag, snippet string) string {
	cands := w.byLine[line]
	if len(cands) == 0 {
		return ""
	}
	// Nodes are recorded outside in, so the last match is the deepest.
	best, found := "", false
	for _, c := range cands {
		n := c.node
		var match bool
		switch tag {
		case "!!seq":
			match = n.Kind == yaml.SequenceNode
		case "!!map":
			match = n.Kind == yaml.MappingNode
		case "":
		default:
			match = n.Kind == yaml.ScalarNode && snippetMatches(n.Value, snippet)
		}
		if match {
			best, found = c.path, true
		}
	}
	if found {
		return best
	}
	// The last recorded node of the line is the deepest value on it.
	paths := make([]string, 0, len(cands))
	for _, c := range cands {
		paths = append(paths, c.path)
	}
	sort.SliceStable(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	return paths[0]
}

func snippetMatches(value, snippet string) bool {
	if len(value) > 10 {
		return strings.HasSuffix(snippet, "...") && strings.HasPrefix(value, strings.TrimSuffix(snippet, "..."))
	}
	return value == snippet
}

// typeName says in words what a Go type wants.
func typeName(t string) string {
	switch {
	case t == "time.Duration":
		return `a duration such as "30s"`
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "string" || t == "config.Secret":
		return "a string"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	case strings.HasPrefix(t, "config."):
		return "a mapping"
	}
	return t
}

// redacted returns the errors with every secret value seen removed from their
// messages, in case one reached a message some other way.
func (w *walker) redacted() Errors {
	var secrets []string
	for _, s := range w.secrets {
		if len(s) >= 6 {
			secrets = append(secrets, s)
		}
	}
	if len(secrets) == 0 {
		return w.errs
	}
	out := make(Errors, len(w.errs))
	for i, e := range w.errs {
		msg := e.Error()
		clean := msg
		for _, s := range secrets {
			clean = strings.ReplaceAll(clean, s, "[redacted]")
		}
		if clean == msg {
			out[i] = e
			continue
		}
		fe, _ := e.(*FieldError)
		if fe != nil {
			c := *fe
			for _, s := range secrets {
				c.Message = strings.ReplaceAll(c.Message, s, "[redacted]")
			}
			out[i] = &c
		} else {
			out[i] = errors.New(clean)
		}
	}
	return out
}

// applyRouteDefaults gives every route DefaultRoute's values for the keys it left out.
// (yaml.v3 decodes each list element into a zero value, so Default() cannot carry them.)
func (w *walker) applyRouteDefaults(c *Config) {
	def := reflect.ValueOf(DefaultRoute())
	fields := yamlFields(routesType.Elem())
	for i := range c.Routes {
		var present map[string]bool
		if i < len(w.routeKeys) {
			present = w.routeKeys[i]
		}
		rv := reflect.ValueOf(&c.Routes[i]).Elem()
		for name, f := range fields {
			if present[name] {
				continue
			}
			if dv := def.FieldByIndex(f.Index); !dv.IsZero() {
				rv.FieldByIndex(f.Index).Set(dv)
			}
		}
	}
}

func errLine(err error) int {
	if fe, ok := err.(*FieldError); ok {
		return fe.line
	}
	return 0
}
