package sim

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Scenario files are TOML, read and written by go-toml. Around it, this
// file keeps the errors precise: a pass over the document with go-toml's
// parser (its unstable package, whose API may change between versions:
// go.mod pins one) records where every field is written (its line and
// its bytes), so that an error of the decoder (which names a key without
// array indices) and a check made after decoding both name the file, the
// line and the field's full path, such as clients[1].policy.max_slots.

// fieldError is an error in a scenario file, at a line and a field.
type fieldError struct {
	file  string // the file's name as given
	line  int    // 1-based; 0 when unknown
	field string // the field's path, such as "clients[1].workload.rate"; may be empty
	msg   string // what is wrong
}

// Error formats the error as "file:line: field: message".
func (e *fieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.file)
	if e.line > 0 {
		fmt.Fprintf(&b, ":%d", e.line)
	}
	b.WriteString(": ")
	if e.field != "" {
		b.WriteString(e.field)
		b.WriteString(": ")
	}
	b.WriteString(e.msg)
	return b.String()
}

// place is where a field is written: its line, and the bytes of its
// key = value (or of its value, for an array element, or of its header's
// key, for a table) in the file.
type place struct {
	line       int
	start, end int
	kind       unstable.Kind // the value's kind; unstable.Table for a table
}

// positions maps each field's path ("clients[1].workload.rate",
// "faults[0].backends[2]") to where it is written.
type positions map[string]place

// line returns the line of path, or of its nearest enclosing field that
// is written in the file, or 0.
func (p positions) line(path string) int {
	for path != "" {
		if pl, ok := p[path]; ok {
			return pl.line
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// written reports whether path is written in the file.
func (p positions) written(path string) bool {
	_, ok := p[path]
	return ok
}

// decodeScenario reads data into sc and returns where each field is
// written. A syntax error, a key defined twice, a key with no field, a
// value of the wrong type and a value its type refuses (a bad duration)
// are [*fieldError]s.
func decodeScenario(file string, data []byte, sc *Scenario) (positions, error) {
	data = data[:len(data):len(data)] // so that offsets follow from capacities
	sn := &scanner{file: file, data: data, lineStarts: lineStarts(data),
		pos: positions{}, arrays: map[string]int{}, defined: map[string]int{}}
	if err := sn.scan(); err != nil {
		return nil, err
	}
	if err := sn.checkKinds(reflect.TypeFor[Scenario]()); err != nil {
		return nil, err
	}
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	err := dec.Decode(sc)
	var strict *toml.StrictMissingError
	var de *toml.DecodeError
	switch {
	case err == nil:
		return sn.pos, nil
	case errors.As(err, &strict):
		errs := make([]error, len(strict.Errors))
		for i := range strict.Errors {
			errs[i] = sn.unknownField(&strict.Errors[i])
		}
		return nil, errors.Join(errs...)
	case errors.As(err, &de):
		row, col := de.Position()
		return nil, &fieldError{file: file, line: row, field: sn.find(de.Key(), row, col), msg: strings.TrimPrefix(de.Error(), "toml: ")}
	}
	return nil, &fieldError{file: file, msg: strings.TrimPrefix(err.Error(), "toml: ")}
}

// marshalScenario writes sc in the file format; zero fields are left out.
func marshalScenario(sc *Scenario) ([]byte, error) {
	return toml.Marshal(sc)
}

// scanner walks a document with go-toml's parser and records the place
// of every key, table and array element, with its full path.
type scanner struct {
	file       string
	data       []byte
	lineStarts []int
	p          unstable.Parser

	pos     positions
	order   []string       // the paths of values and tables, in file order
	arrays  map[string]int // array of tables → elements so far
	defined map[string]int // tables and keys defined explicitly → their line
	cur     string         // the current table
	lastEnd int            // where the last expression read ends
}

func lineStarts(data []byte) []int {
	starts := []int{0}
	for i, c := range data {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// lineOf returns the 1-based line of a byte offset.
func (s *scanner) lineOf(off int) int {
	return sort.Search(len(s.lineStarts), func(i int) bool { return s.lineStarts[i] > off })
}

// offset returns the byte offset of a 1-based line and column.
func (s *scanner) offset(line, col int) int {
	if line < 1 || line > len(s.lineStarts) {
		return -1
	}
	return s.lineStarts[line-1] + col - 1
}

func (s *scanner) span(r unstable.Range) (start, end int) {
	return int(r.Offset), int(r.Offset + r.Length)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (s *scanner) scan() error {
	s.p.Reset(s.data)
	for s.p.NextExpression() {
		e := s.p.Expression()
		var err error
		switch e.Kind {
		case unstable.Table:
			err = s.table(e, false)
		case unstable.ArrayTable:
			err = s.table(e, true)
		case unstable.KeyValue:
			err = s.keyValue(e, s.cur)
		}
		if err != nil {
			return err
		}
		if e.Kind == unstable.KeyValue {
			s.lastEnd = int(e.Raw.Offset + e.Raw.Length)
		} else {
			_, _, s.lastEnd = s.keys(e)
		}
	}
	if err := s.p.Error(); err != nil {
		return s.syntaxError(err)
	}
	return nil
}

// keys returns the parts of a node's (maybe dotted) key and the range
// they span.
func (s *scanner) keys(n *unstable.Node) (parts []string, start, end int) {
	it := n.Key()
	for it.Next() {
		k := it.Node()
		a, b := s.span(k.Raw)
		if len(parts) == 0 {
			start = a
		}
		end = b
		parts = append(parts, string(k.Data))
	}
	return parts, start, end
}

// resolve returns the path of a table header's key: through an array of
// tables, a header names its last element.
func (s *scanner) resolve(parts []string) string {
	path := ""
	for _, k := range parts {
		path = join(path, k)
		if n := s.arrays[path]; n > 0 {
			path = fmt.Sprintf("%s[%d]", path, n-1)
		}
	}
	return path
}

func (s *scanner) table(e *unstable.Node, array bool) error {
	parts, start, end := s.keys(e)
	line := s.lineOf(start)
	var path string
	if array {
		parent := s.resolve(parts[:len(parts)-1])
		arr := join(parent, parts[len(parts)-1])
		if _, ok := s.pos[arr]; !ok {
			s.pos[arr] = place{line: line, start: start, end: end, kind: unstable.Array}
			s.order = append(s.order, arr)
		}
		path = fmt.Sprintf("%s[%d]", arr, s.arrays[arr])
		s.arrays[arr]++
	} else {
		path = s.resolve(parts)
	}
	if first, ok := s.defined[path]; ok {
		return &fieldError{file: s.file, line: line,
			msg: fmt.Sprintf("table [%s] defined twice (first at line %d)", s.data[start:end], first)}
	}
	s.defined[path] = line
	s.pos[path] = place{line: line, start: start, end: end, kind: unstable.Table}
	s.order = append(s.order, path)
	s.cur = path
	return nil
}

// keyValue records a key = value in the table at path.
func (s *scanner) keyValue(e *unstable.Node, table string) error {
	parts, _, _ := s.keys(e)
	start, end := s.span(e.Raw)
	line := s.lineOf(start)
	path := table
	for i, k := range parts {
		path = join(path, k)
		if i < len(parts)-1 {
			if _, ok := s.pos[path]; !ok {
				s.pos[path] = place{line: line, start: start, end: end, kind: unstable.Table}
			}
		}
	}
	if first, ok := s.defined[path]; ok {
		return &fieldError{file: s.file, line: line, field: path, msg: fmt.Sprintf("defined twice (first at line %d)", first)}
	}
	s.defined[path] = line
	return s.value(e.Value(), path, place{line: line, start: start, end: end})
}

// value records a value at path; pl is its key = value's place.
func (s *scanner) value(v *unstable.Node, path string, pl place) error {
	pl.kind = v.Kind
	s.pos[path] = pl
	s.order = append(s.order, path)
	switch v.Kind {
	case unstable.Array:
		i := 0
		it := v.Children()
		for it.Next() {
			e := it.Node()
			if e.Kind == unstable.Comment {
				continue
			}
			epl := place{line: pl.line, start: pl.start, end: pl.end}
			if e.Raw.Length > 0 {
				epl.start, epl.end = s.span(e.Raw)
				epl.line = s.lineOf(epl.start)
			}
			if err := s.value(e, fmt.Sprintf("%s[%d]", path, i), epl); err != nil {
				return err
			}
			i++
		}
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			if kv := it.Node(); kv.Kind == unstable.KeyValue {
				if err := s.keyValue(kv, path); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// find returns the path of the field an error of the decoder at (row,
// col) is about: the innermost field written there whose path without
// array indices is key, or within key.
func (s *scanner) find(key toml.Key, row, col int) string {
	off := s.offset(row, col)
	innermost := func(match func(path string) bool) string {
		best, bestLen := "", -1
		for path, pl := range s.pos {
			if off < pl.start || off >= pl.end || !match(path) {
				continue
			}
			// A field of an inline table wins over the table, an array
			// element over its array.
			l := pl.end - pl.start
			if bestLen < 0 || l < bestLen || l == bestLen && (len(path) > len(best) || len(path) == len(best) && path < best) {
				best, bestLen = path, l
			}
		}
		return best
	}
	want := strings.Join(key, ".")
	path := innermost(func(path string) bool {
		p := stripIndices(path)
		return p == want || strings.HasPrefix(p, want+".")
	})
	if path == "" && len(key) > 0 {
		// The decoder leaves out the key of an inline table that holds
		// the field: take the innermost field written there with the
		// same name.
		name := key[len(key)-1]
		path = innermost(func(path string) bool { return path == name || strings.HasSuffix(path, "."+name) })
	}
	if path == "" {
		return want
	}
	return path
}

func stripIndices(path string) string {
	if !strings.Contains(path, "[") {
		return path
	}
	var b strings.Builder
	skip := false
	for _, c := range path {
		switch {
		case c == '[':
			skip = true
		case c == ']':
			skip = false
		case !skip:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// unknownField turns the decoder's report of a key with no field into an
// error that lists the fields known at that place.
func (s *scanner) unknownField(e *toml.DecodeError) error {
	row, col := e.Position()
	path := s.find(e.Key(), row, col)
	msg := "unknown field"
	if t, ok := typeAt(reflect.TypeFor[Scenario](), parentPath(path)); ok && t.Kind() == reflect.Struct {
		if known := fieldNames(t); len(known) > 0 {
			slices.Sort(known)
			msg += "; known here: " + strings.Join(known, ", ")
		}
	}
	return &fieldError{file: s.file, line: row, field: path, msg: msg}
}

// parentPath returns the path of the table that holds path.
func parentPath(path string) string {
	i := strings.LastIndexByte(path, '.')
	if i < 0 {
		return ""
	}
	return path[:i]
}

// fieldNames lists the TOML names of a struct type's fields.
func fieldNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		if name, ok := tomlName(t.Field(i)); ok {
			names = append(names, name)
		}
	}
	return names
}

func tomlName(f reflect.StructField) (string, bool) {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "" || name == "-" || !f.IsExported() {
		return "", false
	}
	return name, true
}

// typeAt returns the Go type of the field at path in t.
func typeAt(t reflect.Type, path string) (reflect.Type, bool) {
	if path == "" {
		return t, true
	}
	for _, seg := range strings.Split(path, ".") {
		name, _, _ := strings.Cut(seg, "[")
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return nil, false
		}
		found := false
		for i := range t.NumField() {
			if n, ok := tomlName(t.Field(i)); ok && n == name {
				t, found = t.Field(i).Type, true
				break
			}
		}
		if !found {
			return nil, false
		}
		for range strings.Count(seg, "[") {
			for t.Kind() == reflect.Pointer {
				t = t.Elem()
			}
			if t.Kind() != reflect.Slice {
				return nil, false
			}
			t = t.Elem()
		}
	}
	return t, true
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// wantKind says what TOML value a Go type takes, and whether a value of
// kind k is one.
func wantKind(t reflect.Type, k unstable.Kind) (string, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "a string", k == unstable.String
	}
	switch t.Kind() {
	case reflect.String:
		return "a string", k == unstable.String
	case reflect.Bool:
		return "true or false", k == unstable.Bool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer", k == unstable.Integer
	case reflect.Float32, reflect.Float64:
		return "a number", k == unstable.Integer || k == unstable.Float
	case reflect.Slice:
		return "an array", k == unstable.Array
	case reflect.Struct:
		return "a table", k == unstable.InlineTable || k == unstable.Table
	}
	return t.String(), true
}

func kindName(k unstable.Kind) string {
	switch k {
	case unstable.String:
		return "a string"
	case unstable.Integer:
		return "an integer"
	case unstable.Float:
		return "a float"
	case unstable.Bool:
		return "a boolean"
	case unstable.Array:
		return "an array"
	case unstable.InlineTable, unstable.Table:
		return "a table"
	case unstable.DateTime, unstable.LocalDate, unstable.LocalDateTime, unstable.LocalTime:
		return "a date or time"
	}
	return k.String()
}

// checkKinds checks that each value written for a known field is of the
// kind the field takes. The decoder would find most of these itself, but
// says "cannot decode TOML string into struct field sim.PolicySpec.MaxSlots
// of type int", and it hands integers to text fields (drain = 5).
func (s *scanner) checkKinds(root reflect.Type) error {
	for _, path := range s.order {
		t, ok := typeAt(root, path)
		if !ok {
			continue // an unknown field: the decoder reports it
		}
		pl := s.pos[path]
		if want, ok := wantKind(t, pl.kind); !ok {
			return &fieldError{file: s.file, line: pl.line, field: path,
				msg: fmt.Sprintf("want %s, found %s", want, kindName(pl.kind))}
		}
	}
	return nil
}

// syntaxError turns an error of the parser into one with the line and,
// when the line is a key = value, the field.
func (s *scanner) syntaxError(err error) error {
	var pe *unstable.ParserError
	if !errors.As(err, &pe) {
		return &fieldError{file: s.file, msg: err.Error()}
	}
	off := len(s.data)
	if pe.Highlight != nil {
		if o := cap(s.data) - cap(pe.Highlight); o >= 0 && o <= len(s.data) {
			off = o
		}
	}
	line := s.lineOf(off)
	e := &fieldError{file: s.file, line: line, msg: pe.Message}
	if key, val, ok := keyValueText(string(s.lineText(line))); ok && line == s.nextExpressionLine() {
		e.field = join(s.cur, key)
		if bareWord(val) {
			e.msg = fmt.Sprintf("value %s: not a number; strings (durations such as \"5m\" too) need quotes: %s",
				val, strconv.Quote(val))
		}
	}
	return e
}

// nextExpressionLine returns the line where the expression after the
// last one read begins: the first line after it that is neither blank
// nor a comment.
func (s *scanner) nextExpressionLine() int {
	line := 1
	if s.lastEnd > 0 {
		line = s.lineOf(s.lastEnd-1) + 1
	}
	for ; line <= len(s.lineStarts); line++ {
		if t := bytes.TrimSpace(s.lineText(line)); len(t) > 0 && t[0] != '#' {
			return line
		}
	}
	return 0
}

// lineText returns a 1-based line without its newline.
func (s *scanner) lineText(line int) []byte {
	text := s.data[s.lineStarts[line-1]:]
	if i := bytes.IndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	}
	return text
}

// keyValueText splits a line "key = value # comment" into its key and
// value, if it is one.
func keyValueText(line string) (key, val string, ok bool) {
	k, v, ok := strings.Cut(line, "=")
	if !ok {
		return "", "", false
	}
	k = strings.TrimSpace(k)
	if k == "" {
		return "", "", false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return "", "", false
		}
	}
	if i := strings.IndexByte(v, '#'); i >= 0 {
		v = v[:i]
	}
	return k, strings.TrimSpace(v), true
}

// bareWord reports whether s is an unquoted word, such as 10s or crash.
func bareWord(s string) bool {
	if s == "" || strings.ContainsAny(s[:1], "\"'[{") {
		return false
	}
	return !strings.ContainsAny(s, " \t\"'")
}
