// Package toml reads and writes the subset of TOML that scenario files
// use, strictly: every error names the file, the line and the field.
//
// Supported: comments; bare and quoted keys; [table] and [[array of
// tables]] headers, dotted ([clients.policy] after [[clients]] is the
// policy of the last client); basic, literal and multi-line strings;
// integers and floats (with _ separators); booleans; arrays (over several
// lines, trailing comma allowed); inline tables. Not supported, and
// reported as such: dotted keys in key/value pairs, dates and times, hex,
// octal and binary integers, inf and nan.
package toml

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Error is a decoding error at a place in a file.
type Error struct {
	File  string // the file's name as given
	Line  int    // 1-based; 0 when unknown
	Field string // the field's path, such as "clients[1].workload.rate"; may be empty
	Msg   string // what is wrong
}

// Error formats the error as "file:line: field: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

type kind uint8

const (
	kString kind = iota
	kInt
	kFloat
	kBool
	kArray
	kTable
)

func (k kind) String() string {
	return [...]string{"a string", "an integer", "a float", "a boolean", "an array", "a table"}[k]
}

type value struct {
	kind kind
	line int
	s    string
	i    int64
	f    float64
	b    bool
	arr  []*value
	aot  bool // array of tables, from [[headers]]
	tab  *table
}

type table struct {
	keys    []string
	vals    map[string]*value
	defined bool // by a header or inline, not only implied by a dotted header
}

func newTable() *table { return &table{vals: map[string]*value{}} }

func (t *table) set(k string, v *value) { t.keys = append(t.keys, k); t.vals[k] = v }

type parser struct {
	file string
	src  string
	pos  int
	line int
}

func (p *parser) errf(format string, a ...any) error {
	return &Error{File: p.file, Line: p.line, Msg: fmt.Sprintf(format, a...)}
}

// parse reads a whole document into its root table.
func parse(file string, src []byte) (*table, error) {
	if !utf8.Valid(src) {
		return nil, &Error{File: file, Line: 1, Msg: "not valid UTF-8"}
	}
	p := &parser{file: file, src: string(src), line: 1}
	root := newTable()
	root.defined = true
	cur := root
	for {
		p.skipBlank(true)
		if p.eof() {
			return root, nil
		}
		var err error
		if p.peek() == '[' {
			cur, err = p.header(root)
		} else {
			err = p.keyValue(cur)
		}
		if err != nil {
			return nil, err
		}
		if err := p.endOfLine(); err != nil {
			return nil, err
		}
	}
}

func (p *parser) eof() bool  { return p.pos >= len(p.src) }
func (p *parser) peek() byte { return p.src[p.pos] }

// skipBlank skips spaces, tabs and comments, and newlines when nl is set.
func (p *parser) skipBlank(nl bool) {
	for !p.eof() {
		switch c := p.peek(); {
		case c == ' ' || c == '\t' || c == '\r':
			p.pos++
		case c == '#':
			for !p.eof() && p.peek() != '\n' {
				p.pos++
			}
		case c == '\n' && nl:
			p.pos++
			p.line++
		default:
			return
		}
	}
}

func (p *parser) endOfLine() error {
	p.skipBlank(false)
	if p.eof() {
		return nil
	}
	if p.peek() != '\n' {
		return p.errf("unexpected %q after the value; one key = value per line", p.rest(12))
	}
	return nil
}

// rest returns up to n characters from the current position, for errors.
func (p *parser) rest(n int) string {
	end := min(p.pos+n, len(p.src))
	if i := strings.IndexByte(p.src[p.pos:end], '\n'); i >= 0 {
		end = p.pos + i
	}
	return p.src[p.pos:end]
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// key reads one bare or quoted key.
func (p *parser) key() (string, error) {
	if p.eof() {
		return "", p.errf("expected a key, found the end of the file")
	}
	switch c := p.peek(); {
	case c == '"':
		v, err := p.basicString()
		if err != nil {
			return "", err
		}
		return v.s, nil
	case c == '\'':
		v, err := p.literalString()
		if err != nil {
			return "", err
		}
		return v.s, nil
	case isBare(c):
		start := p.pos
		for !p.eof() && isBare(p.peek()) {
			p.pos++
		}
		return p.src[start:p.pos], nil
	}
	return "", p.errf("expected a key, found %q", p.rest(12))
}

// dottedKey reads keys separated by dots, for headers.
func (p *parser) dottedKey() ([]string, error) {
	var parts []string
	for {
		p.skipBlank(false)
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		parts = append(parts, k)
		p.skipBlank(false)
		if p.eof() || p.peek() != '.' {
			return parts, nil
		}
		p.pos++
	}
}

// header reads [a.b] or [[a.b]] and returns the table it opens.
func (p *parser) header(root *table) (*table, error) {
	line := p.line
	p.pos++
	array := !p.eof() && p.peek() == '['
	if array {
		p.pos++
	}
	parts, err := p.dottedKey()
	if err != nil {
		return nil, err
	}
	closing := "]"
	if array {
		closing = "]]"
	}
	if !strings.HasPrefix(p.src[p.pos:], closing) {
		return nil, p.errf("header not closed with %s", closing)
	}
	p.pos += len(closing)
	name := strings.Join(parts, ".")
	t := root
	for _, k := range parts[:len(parts)-1] {
		v, ok := t.vals[k]
		if !ok {
			v = &value{kind: kTable, line: line, tab: newTable()}
			t.set(k, v)
		}
		switch {
		case v.kind == kTable:
			t = v.tab
		case v.kind == kArray && v.aot:
			t = v.arr[len(v.arr)-1].tab
		default:
			return nil, p.errf("header [%s]: %s is %s, not a table", name, k, v.kind)
		}
	}
	last := parts[len(parts)-1]
	v, ok := t.vals[last]
	if array {
		if !ok {
			v = &value{kind: kArray, aot: true, line: line}
			t.set(last, v)
		} else if v.kind != kArray || !v.aot {
			return nil, p.errf("header [[%s]]: %s was already defined at line %d as %s", name, last, v.line, v.kind)
		}
		nt := newTable()
		nt.defined = true
		v.arr = append(v.arr, &value{kind: kTable, line: line, tab: nt})
		return nt, nil
	}
	if !ok {
		nt := newTable()
		nt.defined = true
		t.set(last, &value{kind: kTable, line: line, tab: nt})
		return nt, nil
	}
	if v.kind != kTable {
		return nil, p.errf("header [%s]: %s was already defined at line %d as %s", name, last, v.line, v.kind)
	}
	if v.tab.defined {
		return nil, p.errf("table [%s] defined twice (first at line %d)", name, v.line)
	}
	v.tab.defined = true
	v.line = line
	return v.tab, nil
}

// keyValue reads key = value into t.
func (p *parser) keyValue(t *table) error {
	line := p.line
	k, err := p.key()
	if err != nil {
		return err
	}
	p.skipBlank(false)
	if !p.eof() && p.peek() == '.' {
		return p.errf("dotted key %s%s: not supported; use a [%s] table", k, p.rest(12), k)
	}
	if p.eof() || p.peek() != '=' {
		return p.errf("expected = after the key %s", k)
	}
	p.pos++
	p.skipBlank(false)
	v, err := p.value()
	if err != nil {
		e := err.(*Error)
		if e.Field == "" {
			e.Field = k
		} else {
			e.Field = k + "." + e.Field
		}
		return e
	}
	v.line = line
	if old, dup := t.vals[k]; dup {
		return &Error{File: p.file, Line: line, Field: k, Msg: fmt.Sprintf("defined twice (first at line %d)", old.line)}
	}
	t.set(k, v)
	return nil
}

func (p *parser) value() (*value, error) {
	if p.eof() {
		return nil, p.errf("expected a value, found the end of the file")
	}
	line := p.line
	switch c := p.peek(); {
	case c == '"':
		return p.basicString()
	case c == '\'':
		return p.literalString()
	case c == '[':
		return p.array()
	case c == '{':
		return p.inlineTable()
	case strings.HasPrefix(p.src[p.pos:], "true") && !p.bareAt(p.pos+4):
		p.pos += 4
		return &value{kind: kBool, b: true, line: line}, nil
	case strings.HasPrefix(p.src[p.pos:], "false") && !p.bareAt(p.pos+5):
		p.pos += 5
		return &value{kind: kBool, b: false, line: line}, nil
	case c == '+' || c == '-' || c >= '0' && c <= '9':
		return p.number()
	}
	word := p.word()
	return nil, p.errf("value %s: not a number, boolean, array or table; strings need quotes: %q", word, word)
}

func (p *parser) bareAt(i int) bool { return i < len(p.src) && isBare(p.src[i]) }

// word returns the run of characters up to a delimiter, for errors.
func (p *parser) word() string {
	end := p.pos
	for end < len(p.src) && !strings.ContainsRune(" \t\r\n,]}#", rune(p.src[end])) {
		end++
	}
	return p.src[p.pos:end]
}

func (p *parser) number() (*value, error) {
	w := p.word()
	line := p.line
	clean := strings.ReplaceAll(w, "_", "")
	if strings.Contains(w, "__") || strings.HasPrefix(w, "_") || strings.HasSuffix(w, "_") {
		return nil, p.errf("number %s: misplaced _", w)
	}
	digits := strings.TrimLeft(clean, "+-")
	if strings.HasPrefix(digits, "0x") || strings.HasPrefix(digits, "0o") || strings.HasPrefix(digits, "0b") {
		return nil, p.errf("number %s: hex, octal and binary are not supported", w)
	}
	if i, err := strconv.ParseInt(clean, 10, 64); err == nil {
		p.pos += len(w)
		return &value{kind: kInt, i: i, line: line}, nil
	}
	if strings.ContainsAny(digits, ".eE") && !strings.ContainsAny(digits, "nNiI") {
		if f, err := strconv.ParseFloat(clean, 64); err == nil {
			p.pos += len(w)
			return &value{kind: kFloat, f: f, line: line}, nil
		}
	}
	if strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return nil, p.errf("value %s: not a number; strings (durations such as \"5m\" too) need quotes: %q", w, w)
	}
	return nil, p.errf("number %s: out of range", w)
}

func (p *parser) basicString() (*value, error) {
	line := p.line
	multi := strings.HasPrefix(p.src[p.pos:], `"""`)
	if multi {
		p.pos += 3
		// A newline right after the opening quotes is trimmed.
		if strings.HasPrefix(p.src[p.pos:], "\r\n") {
			p.pos += 2
			p.line++
		} else if !p.eof() && p.peek() == '\n' {
			p.pos++
			p.line++
		}
	} else {
		p.pos++
	}
	var b strings.Builder
	for {
		if p.eof() {
			if !multi {
				return nil, p.errf("string not closed on its line (use \"\"\" for several lines)")
			}
			return nil, &Error{File: p.file, Line: line, Msg: "string not closed"}
		}
		c := p.peek()
		switch {
		case multi && strings.HasPrefix(p.src[p.pos:], `"""`):
			p.pos += 3
			return &value{kind: kString, s: b.String(), line: line}, nil
		case !multi && c == '"':
			p.pos++
			return &value{kind: kString, s: b.String(), line: line}, nil
		case c == '\n':
			if !multi {
				return nil, p.errf("string not closed on its line (use \"\"\" for several lines)")
			}
			b.WriteByte('\n')
			p.pos++
			p.line++
		case c == '\\':
			p.pos++
			if p.eof() {
				return nil, p.errf("string not closed")
			}
			e := p.peek()
			p.pos++
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '"':
				b.WriteByte('"')
			case '\\':
				b.WriteByte('\\')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'u', 'U':
				n := 4
				if e == 'U' {
					n = 8
				}
				if p.pos+n > len(p.src) {
					return nil, p.errf("bad \\%c escape", e)
				}
				r, err := strconv.ParseUint(p.src[p.pos:p.pos+n], 16, 32)
				if err != nil || !utf8.ValidRune(rune(r)) {
					return nil, p.errf("bad \\%c escape", e)
				}
				b.WriteRune(rune(r))
				p.pos += n
			case '\n':
				if !multi {
					return nil, p.errf("bad escape \\ at the end of a line")
				}
				// Line-ending backslash: trim the newline and leading blanks.
				p.line++
				for !p.eof() && strings.ContainsRune(" \t\r\n", rune(p.peek())) {
					if p.peek() == '\n' {
						p.line++
					}
					p.pos++
				}
			default:
				return nil, p.errf("bad escape \\%c", e)
			}
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
}

func (p *parser) literalString() (*value, error) {
	line := p.line
	if strings.HasPrefix(p.src[p.pos:], "'''") {
		p.pos += 3
		if !p.eof() && p.peek() == '\n' {
			p.pos++
			p.line++
		}
		end := strings.Index(p.src[p.pos:], "'''")
		if end < 0 {
			return nil, &Error{File: p.file, Line: line, Msg: "string not closed"}
		}
		s := p.src[p.pos : p.pos+end]
		p.line += strings.Count(s, "\n")
		p.pos += end + 3
		return &value{kind: kString, s: s, line: line}, nil
	}
	p.pos++
	end := strings.IndexAny(p.src[p.pos:], "'\n")
	if end < 0 || p.src[p.pos+end] != '\'' {
		return nil, p.errf("string not closed on its line")
	}
	s := p.src[p.pos : p.pos+end]
	p.pos += end + 1
	return &value{kind: kString, s: s, line: line}, nil
}

func (p *parser) array() (*value, error) {
	v := &value{kind: kArray, line: p.line}
	p.pos++
	for {
		p.skipBlank(true)
		if p.eof() {
			return nil, &Error{File: p.file, Line: v.line, Msg: "array not closed with ]"}
		}
		if p.peek() == ']' {
			p.pos++
			return v, nil
		}
		e, err := p.value()
		if err != nil {
			return nil, err
		}
		if len(v.arr) > 0 && v.arr[0].kind != e.kind && !(isNum(v.arr[0].kind) && isNum(e.kind)) {
			return nil, p.errf("array mixes %s and %s", v.arr[0].kind, e.kind)
		}
		v.arr = append(v.arr, e)
		p.skipBlank(true)
		if p.eof() {
			return nil, &Error{File: p.file, Line: v.line, Msg: "array not closed with ]"}
		}
		switch p.peek() {
		case ',':
			p.pos++
		case ']':
		default:
			return nil, p.errf("expected , or ] in the array, found %q", p.rest(12))
		}
	}
}

func isNum(k kind) bool { return k == kInt || k == kFloat }

func (p *parser) inlineTable() (*value, error) {
	t := newTable()
	t.defined = true
	v := &value{kind: kTable, line: p.line, tab: t}
	p.pos++
	p.skipBlank(false)
	if !p.eof() && p.peek() == '}' {
		p.pos++
		return v, nil
	}
	for {
		p.skipBlank(false)
		if err := p.keyValue(t); err != nil {
			return nil, err
		}
		p.skipBlank(false)
		if p.eof() {
			return nil, p.errf("inline table not closed with }")
		}
		switch p.peek() {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return v, nil
		default:
			return nil, p.errf("expected , or } in the inline table (on one line), found %q", p.rest(12))
		}
	}
}
