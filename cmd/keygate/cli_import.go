package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"golang.org/x/term"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/keystore"
)

// maxImportKeyLen is the longest key keys import accepts, in bytes.
const maxImportKeyLen = 256

// isTerminal reports whether w is a terminal, where keys import shows a progress bar.
// Tests replace it.
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newKeysImportCmd() *cobra.Command {
	var principalID, file, csvFile, namePrefix string
	cmd := &cobra.Command{
		Use:   "import (--principal ID --file FILE | --csv FILE) [--name-prefix S]",
		Short: "Import existing (legacy) keys from a file; only their hashes are stored",
		Long: `Import keys that clients already hold, so that they keep working behind keygate.

--file FILE holds one key per line for the principal --principal; blank lines and lines
starting with # are skipped, whitespace around a key is ignored. "--file -" reads stdin.
--csv FILE holds rows principal,name,key (an optional header row principal,name,key is
skipped, as are # comments); an empty name, and every key of --file, is named
<name-prefix><line number> (default prefix "legacy-").

The whole file is checked before anything is written: every bad line (empty, too long,
whitespace or control characters, a keygate-prefixed key with a bad checksum, a duplicate)
and every unknown or disabled principal is reported with its line, and then nothing is
imported. Otherwise all keys are stored in one transaction, as HMACs under keys.secret,
marked legacy. Keys already stored are skipped, so a re-run imports nothing twice.
Keys without the configured prefix are accepted only with keys.accept_legacy: true.
The import is not bound by keys.max_per_principal.`,
		Example: `  keygate keys import --principal acme --file acme-keys.txt
  keygate keys import --csv legacy.csv --name-prefix old-`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fl := cmd.Flags()
			var src string
			switch {
			case fl.Changed("csv") && (fl.Changed("file") || fl.Changed("principal")):
				bad := "--file"
				if !fl.Changed("file") {
					bad = "--principal"
				}
				return fmt.Errorf("--csv and %s: give --csv FILE, or --principal ID --file FILE", bad)
			case fl.Changed("csv"):
				src = csvFile
			case fl.Changed("file") && fl.Changed("principal"):
				src = file
			case fl.Changed("file"):
				return errors.New("--file: needs --principal ID (or give rows principal,name,key with --csv)")
			default:
				return errors.New("give --principal ID --file FILE, or --csv FILE")
			}
			if src == "" {
				return errors.New("FILE: must not be empty")
			}
			cfg, err := loadConfig(configPath(cmd))
			if err != nil {
				return err
			}
			var problems []error
			if !fl.Changed("csv") {
				problems = append(problems, checkPrincipalID(cfg, "--principal", principalID))
			}
			if n := utf8.RuneCountInString(namePrefix); n > keystore.MaxNameLen-10 {
				problems = append(problems, fmt.Errorf("--name-prefix: at most %d characters, got %d", keystore.MaxNameLen-10, n))
			} else {
				problems = append(problems, keystore.ValidateName("--name-prefix", namePrefix+"1"))
			}
			if err := errors.Join(problems...); err != nil {
				return err
			}
			return runImport(cmd, cfg, importSource{path: src, csv: fl.Changed("csv"), principal: principalID}, namePrefix)
		},
	}
	f := cmd.Flags()
	f.StringVar(&principalID, "principal", "", "principal of every key of --file")
	f.StringVar(&file, "file", "", `file of keys, one per line ("-": stdin)`)
	f.StringVar(&csvFile, "csv", "", `CSV file of rows principal,name,key ("-": stdin)`)
	f.StringVar(&namePrefix, "name-prefix", "legacy-", "names of keys without one are this and their line number")
	return cmd
}

// importSource is the file keys import reads.
type importSource struct {
	path      string // "-": stdin
	csv       bool
	principal string // the principal of every key, when not csv
}

// importer checks the lines of an import file and turns them into key records. It keeps
// hashes, never plaintext keys, and no message it makes quotes more of a key than its
// displayed prefix.
type importer struct {
	src        string // file name as the user gave it, for messages
	format     keystore.Format
	hasher     *keystore.Hasher
	namePrefix string
	now        time.Time

	keys     []keystore.Key
	lines    []int                 // lines[i] is the line of keys[i]
	seen     map[keystore.Hash]int // line of each key hash
	users    []principalUse        // principals named, in the order they first appear
	problems []importProblem
	legacy   int // keys without the configured prefix
}

// importProblem is one problem of an import file; line 0 is the whole file.
type importProblem struct {
	line int
	msg  string
}

// principalUse is a principal named in an import file: its first line and how many
// keys it gets.
type principalUse struct {
	id    string
	line  int
	count int
}

func newImporter(cfg *config.Config, src, namePrefix string) *importer {
	return &importer{
		src:        src,
		format:     keyFormat(cfg),
		hasher:     hasher(cfg),
		namePrefix: namePrefix,
		now:        time.Now().UTC().Truncate(time.Second),
		seen:       map[keystore.Hash]int{},
	}
}

// problem records a problem of line (0: of the whole file).
func (im *importer) problem(line int, format string, args ...any) {
	im.problems = append(im.problems, importProblem{line, fmt.Sprintf(format, args...)})
}

// report writes every problem, in line order, as FILE:LINE: message.
func (im *importer) report(w io.Writer) {
	slices.SortStableFunc(im.problems, func(a, b importProblem) int { return cmp.Compare(a.line, b.line) })
	for _, p := range im.problems {
		if p.line > 0 {
			fmt.Fprintf(w, "%s:%d: %s\n", im.src, p.line, p.msg)
		} else {
			fmt.Fprintf(w, "%s: %s\n", im.src, p.msg)
		}
	}
}

// add checks one key of line for principal and records it. name "" means the generated
// name.
func (im *importer) add(line int, principal, name, key string) {
	ok := true
	if name == "" {
		name = im.namePrefix + strconv.Itoa(line)
	} else if im.format.HasPrefix(name) {
		im.problem(line, "name: starts with the key prefix %q: is a key in the name column?", im.format.Prefix)
		ok = false
	}
	if ok {
		if err := keystore.ValidateName("name", name); err != nil {
			im.problem(line, "%v", err)
			ok = false
		}
	}
	if msg := im.checkKey(key); msg != "" {
		im.problem(line, "%s", msg)
		return
	}
	h := im.hasher.Hash(key)
	if first, dup := im.seen[h]; dup {
		im.problem(line, "key%s: duplicate of line %d", im.quoteShown(key), first)
		return
	}
	im.seen[h] = line
	if !ok || principal == "" {
		return // a problem of the line is recorded already
	}
	id, err := uuid.NewV7()
	if err != nil {
		im.problem(line, "generate key id: %v", err)
		return
	}
	if !im.format.HasPrefix(key) {
		im.legacy++
	}
	im.keys = append(im.keys, keystore.Key{
		ID:          id.String(),
		PrincipalID: principal,
		Name:        name,
		Prefix:      im.format.Shown(key),
		Hash:        h,
		Legacy:      true,
		CreatedAt:   im.now,
	})
	im.lines = append(im.lines, line)
}

// checkKey returns what is wrong with key, or "". The message never holds the key.
func (im *importer) checkKey(key string) string {
	switch {
	case key == "":
		return "key: empty"
	case len(key) > maxImportKeyLen:
		return fmt.Sprintf("key: longer than %d bytes (%d)", maxImportKeyLen, len(key))
	case !utf8.ValidString(key):
		return "key: not valid UTF-8"
	}
	for i, r := range key {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Sprintf("key: whitespace or a control character at byte %d", i)
		}
	}
	if im.format.HasPrefix(key) && im.format.Check(key) != nil {
		return fmt.Sprintf("key%s: starts with the key prefix %q but is not a well-formed keygate key (length or checksum)",
			im.quoteShown(key), im.format.Prefix)
	}
	return ""
}

// quoteShown returns " kg_Ab12Cd34…" (the key's displayed prefix) for a message, or ""
// when the key is too short for a part of it to be shown safely.
func (im *importer) quoteShown(key string) string {
	s := im.format.Shown(key)
	if s == "" || len(key) < len(s)+16 {
		return ""
	}
	return " " + s + "…"
}

// use records that line names principal.
func (im *importer) use(principal string, line int) {
	for i := range im.users {
		if im.users[i].id == principal {
			im.users[i].count++
			return
		}
	}
	im.users = append(im.users, principalUse{id: principal, line: line, count: 1})
}

// readLines reads a file of one key per line, all of principal.
func (im *importer) readLines(r io.Reader, principal string) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		long := false
		for errors.Is(err, bufio.ErrBufferFull) {
			long = true // far beyond any key: skip the rest of the line
			_, err = br.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("read %s: %w", im.src, err)
		}
		if len(b) == 0 && err == io.EOF {
			return nil
		}
		if line == 1 {
			b = trimBOM(b)
		}
		switch s := strings.TrimSpace(string(b)); {
		case long:
			im.problem(line, "key: longer than %d bytes", maxImportKeyLen)
		case s == "" || s[0] == '#':
		default:
			im.add(line, principal, "", s)
			im.use(principal, line)
		}
		if err == io.EOF {
			return nil
		}
	}
}

// readCSV reads rows principal,name,key.
func (im *importer) readCSV(r io.Reader, cfg *config.Config) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // counted here, so that every bad row is reported
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	first := true
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			im.problem(pe.StartLine, "csv: %v", pe.Err)
			first = false
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", im.src, err)
		}
		line, _ := cr.FieldPos(0)
		if first {
			first = false
			rec[0] = string(trimBOM([]byte(rec[0])))
			if isHeader(rec) {
				if !(len(rec) == 3 && strings.EqualFold(strings.TrimSpace(rec[0]), "principal") &&
					strings.EqualFold(strings.TrimSpace(rec[1]), "name")) {
					im.problem(line, "header: the columns must be principal,name,key in this order")
				}
				continue
			}
		}
		if len(rec) != 3 {
			im.problem(line, "want 3 columns (principal,name,key), got %d", len(rec))
			continue
		}
		principal := strings.TrimSpace(rec[0])
		if err := checkPrincipalID(cfg, "principal", principal); err != nil {
			im.problem(line, "%v", err)
			// The key is still checked, for the other problems of the line.
			im.add(line, "", strings.TrimSpace(rec[1]), strings.TrimSpace(rec[2]))
			continue
		}
		im.add(line, principal, strings.TrimSpace(rec[1]), strings.TrimSpace(rec[2]))
		im.use(principal, line)
	}
}

// isHeader reports whether rec is a header row: the names principal, name and key.
func isHeader(rec []string) bool {
	if len(rec) != 3 {
		return false
	}
	seen := map[string]bool{}
	for _, f := range rec {
		f = strings.ToLower(strings.TrimSpace(f))
		if f != "principal" && f != "name" && f != "key" || seen[f] {
			return false
		}
		seen[f] = true
	}
	return true
}

func trimBOM(b []byte) []byte {
	if len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF {
		return b[3:]
	}
	return b
}

// checkPrincipals reports every principal of the file that is unknown, deleted or
// disabled, and every key already stored for another principal.
func (im *importer) checkPrincipals(ctx context.Context, s keystore.Store, csvMode bool) error {
	for _, u := range im.users {
		p, err := s.GetPrincipal(ctx, u.id)
		where, also := u.line, ""
		if !csvMode {
			where = 0 // --principal, not a line
		} else if u.count > 1 {
			also = fmt.Sprintf(" (and on %d more lines)", u.count-1)
		}
		switch {
		case errors.Is(err, keystore.ErrNotFound):
			im.problem(where, "principal %s not found%s", quotePrincipal(u.id), also)
		case err != nil:
			return err
		case p.Disabled():
			im.problem(where, "principal %s is disabled%s", quotePrincipal(u.id), also)
		}
	}
	// One lookup per key, a few at a time (SQLite's WAL readers do not block each other).
	held := make([]*keystore.Key, len(im.keys)) // held[i]: the stored key of another principal
	g, gctx := errgroup.WithContext(ctx)
	const workers = 8
	for w := range workers {
		g.Go(func() error {
			for i := w; i < len(im.keys); i += workers {
				e, err := s.LookupKey(gctx, im.keys[i].Hash)
				switch {
				case errors.Is(err, keystore.ErrNotFound):
				case err != nil:
					return err
				case e.Key.PrincipalID != im.keys[i].PrincipalID:
					held[i] = &e.Key
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, other := range held {
		if other != nil {
			im.problem(im.lines[i], "key %s: already stored for principal %q (key %s)",
				orDash(im.keys[i].Prefix), other.PrincipalID, other.ID)
		}
	}
	return nil
}

// quotePrincipal quotes a principal id read from a file for a message. A long id of
// letters and digits only may be a key in the wrong column: only its first 4 characters
// are shown.
func quotePrincipal(id string) string {
	if len(id) < 16 || strings.ContainsAny(id, "._-") {
		return strconv.Quote(id)
	}
	return fmt.Sprintf("%q (%d characters)", id[:4]+"…", len(id))
}

// runImport reads, checks and stores the keys of src.
func runImport(cmd *cobra.Command, cfg *config.Config, src importSource, namePrefix string) error {
	stderr := cmd.ErrOrStderr()
	var (
		r    io.Reader
		size int64 = -1
	)
	if src.path == "-" {
		r = cmd.InOrStdin()
	} else {
		f, err := os.Open(src.path)
		if err != nil {
			return err // names the file
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			size = st.Size()
		}
		r = f
	}
	name := src.path
	if name == "-" {
		name = "stdin"
	}
	im := newImporter(cfg, name, namePrefix)

	tty := isTerminal(stderr)
	var bar *progressbar.ProgressBar
	if tty {
		bar = progressbar.NewOptions64(size,
			progressbar.OptionSetDescription("checking and hashing "+name),
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(65*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(stderr) }),
			progressbar.OptionSetRenderBlankState(true),
		)
		pr := progressbar.NewReader(r, bar)
		r = &pr
	}
	var err error
	if src.csv {
		err = im.readCSV(r, cfg)
	} else {
		err = im.readLines(r, src.principal)
	}
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		return err
	}
	if len(im.problems) == 0 && len(im.keys) == 0 {
		return fmt.Errorf("%s: no keys (only blank lines and # comments)", name)
	}

	ctx := cliContext(cmd)
	s, err := openCLIStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := im.checkPrincipals(ctx, s, src.csv); err != nil {
		return err
	}
	if len(im.problems) > 0 {
		im.report(stderr)
		fmt.Fprintf(stderr, "nothing imported: %s in %s\n", plural(len(im.problems), "problem"), name)
		return exitError(1)
	}

	if tty {
		fmt.Fprintf(stderr, "storing %s...\n", plural(len(im.keys), "key"))
	}
	stored, err := s.ImportKeys(ctx, im.keys)
	if err != nil {
		return fmt.Errorf("nothing imported: %w", err)
	}
	present := len(im.keys) - stored
	out := cmd.OutOrStdout()
	if stored == 0 {
		fmt.Fprintf(out, "imported 0 keys, %d already present, from %s\n", present, name)
	} else {
		fmt.Fprintf(out, "imported %s for %s (%d already present) from %s\n",
			plural(stored, "key"), plural(len(im.users), "principal"), present, name)
	}
	if im.legacy > 0 && !cfg.Keys.AcceptLegacy {
		fmt.Fprintf(stderr, "note: keys.accept_legacy is false: keys without the %s prefix will not be accepted until you turn it on\n",
			cfg.Keys.Prefix)
	}
	return nil
}

// plural returns "1 key" or "n keys".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
