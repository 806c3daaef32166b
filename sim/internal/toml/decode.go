package toml

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Positions maps each decoded field's path ("clients[1].workload.rate") to
// the line it was written on, so that checks made after decoding can name
// the line too.
type Positions map[string]int

// Line returns the line of path, or of its nearest enclosing field that
// has one, or 0.
func (p Positions) Line(path string) int {
	for path != "" {
		if l, ok := p[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// Unmarshal decodes the document data into v, a pointer to a struct whose
// fields carry `toml:"name"` tags. A key with no field, a value of the wrong
// type, or a text field whose UnmarshalText fails is an [*Error] naming file,
// line and field. Fields of types implementing encoding.TextUnmarshaler are
// written as strings.
func Unmarshal(file string, data []byte, v any) (Positions, error) {
	root, err := parse(file, data)
	if err != nil {
		return nil, err
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("toml: Unmarshal needs a pointer to a struct, not %T", v)
	}
	d := &decoder{file: file, pos: Positions{}}
	if err := d.table(root, 1, rv.Elem(), ""); err != nil {
		return nil, err
	}
	return d.pos, nil
}

type decoder struct {
	file string
	pos  Positions
}

func (d *decoder) errAt(line int, path, format string, a ...any) error {
	return &Error{File: d.file, Line: line, Field: path, Msg: fmt.Sprintf(format, a...)}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldsOf lists the tagged fields of a struct type.
func fieldsOf(t reflect.Type) (names []string, index map[string]int) {
	index = map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		names = append(names, tag)
		index[tag] = i
	}
	return names, index
}

func (d *decoder) table(t *table, line int, rv reflect.Value, path string) error {
	names, index := fieldsOf(rv.Type())
	for _, k := range t.keys {
		v := t.vals[k]
		p := join(path, k)
		i, ok := index[k]
		if !ok {
			known := slices.Clone(names)
			slices.Sort(known)
			return d.errAt(v.line, p, "unknown field; known here: %s", strings.Join(known, ", "))
		}
		if err := d.value(v, rv.Field(i), p); err != nil {
			return err
		}
	}
	return nil
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

func (d *decoder) value(v *value, rv reflect.Value, path string) error {
	d.pos[path] = v.line
	if rv.CanAddr() && rv.Addr().Type().Implements(textUnmarshaler) {
		if v.kind != kString {
			return d.errAt(v.line, path, "want a string, found %s", v.kind)
		}
		if err := rv.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(v.s)); err != nil {
			return d.errAt(v.line, path, "%v", err)
		}
		return nil
	}
	switch rv.Kind() {
	case reflect.Pointer:
		nv := reflect.New(rv.Type().Elem())
		if err := d.value(v, nv.Elem(), path); err != nil {
			return err
		}
		rv.Set(nv)
		return nil
	case reflect.String:
		if v.kind != kString {
			return d.errAt(v.line, path, "want a string, found %s", v.kind)
		}
		rv.SetString(v.s)
	case reflect.Bool:
		if v.kind != kBool {
			return d.errAt(v.line, path, "want true or false, found %s", v.kind)
		}
		rv.SetBool(v.b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.kind != kInt {
			return d.errAt(v.line, path, "want an integer, found %s", v.kind)
		}
		if rv.OverflowInt(v.i) {
			return d.errAt(v.line, path, "%d is out of range", v.i)
		}
		rv.SetInt(v.i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.kind != kInt {
			return d.errAt(v.line, path, "want an integer, found %s", v.kind)
		}
		if v.i < 0 || rv.OverflowUint(uint64(v.i)) {
			return d.errAt(v.line, path, "%d is out of range", v.i)
		}
		rv.SetUint(uint64(v.i))
	case reflect.Float32, reflect.Float64:
		switch v.kind {
		case kInt:
			rv.SetFloat(float64(v.i))
		case kFloat:
			rv.SetFloat(v.f)
		default:
			return d.errAt(v.line, path, "want a number, found %s", v.kind)
		}
	case reflect.Slice:
		if v.kind != kArray {
			return d.errAt(v.line, path, "want an array, found %s", v.kind)
		}
		s := reflect.MakeSlice(rv.Type(), len(v.arr), len(v.arr))
		for i, e := range v.arr {
			if err := d.value(e, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		rv.Set(s)
	case reflect.Struct:
		if v.kind != kTable {
			return d.errAt(v.line, path, "want a table, found %s", v.kind)
		}
		return d.table(v.tab, v.line, rv, path)
	default:
		return d.errAt(v.line, path, "toml: cannot decode into a %s", rv.Type())
	}
	return nil
}

// Marshal writes v, a struct or a pointer to one, as TOML that Unmarshal
// reads back to an equal value. Zero fields and nil pointers are left out;
// nested structs become [tables] and slices of structs [[arrays of
// tables]].
func Marshal(v any) ([]byte, error) {
	rv := reflect.Indirect(reflect.ValueOf(v))
	if rv.Kind() != reflect.Struct {
		return nil, fmt.Errorf("toml: Marshal needs a struct, not %T", v)
	}
	var b strings.Builder
	if err := encodeTable(&b, rv, ""); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

var textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()

func isTable(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !t.Implements(textMarshaler)
}

func isTableArray(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && isTable(t.Elem())
}

func encodeTable(b *strings.Builder, rv reflect.Value, prefix string) error {
	names, index := fieldsOf(rv.Type())
	// Scalars first, then tables, then arrays of tables, as TOML requires.
	for _, n := range names {
		f := rv.Field(index[n])
		if f.IsZero() || isTable(f.Type()) || isTableArray(f.Type()) {
			continue
		}
		s, err := scalar(f)
		if err != nil {
			return fmt.Errorf("toml: %s: %w", join(prefix, n), err)
		}
		fmt.Fprintf(b, "%s = %s\n", quoteKey(n), s)
	}
	for _, n := range names {
		f := rv.Field(index[n])
		if f.IsZero() || !isTable(f.Type()) {
			continue
		}
		fmt.Fprintf(b, "\n[%s]\n", join(prefix, quoteKey(n)))
		if err := encodeTable(b, f, join(prefix, quoteKey(n))); err != nil {
			return err
		}
	}
	for _, n := range names {
		f := rv.Field(index[n])
		if f.IsZero() || !isTableArray(f.Type()) {
			continue
		}
		for i := range f.Len() {
			fmt.Fprintf(b, "\n[[%s]]\n", join(prefix, quoteKey(n)))
			if err := encodeTable(b, f.Index(i), join(prefix, quoteKey(n))); err != nil {
				return err
			}
		}
	}
	return nil
}

func quoteKey(k string) string {
	for i := range len(k) {
		if !isBare(k[i]) {
			return strconv.Quote(k)
		}
	}
	return k
}

func scalar(f reflect.Value) (string, error) {
	if f.Type().Implements(textMarshaler) {
		t, err := f.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			return "", err
		}
		return strconv.Quote(string(t)), nil
	}
	switch f.Kind() {
	case reflect.Pointer:
		return scalar(f.Elem())
	case reflect.String:
		return strconv.Quote(f.String()), nil
	case reflect.Bool:
		return strconv.FormatBool(f.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(f.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(f.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		x := f.Float()
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return "", fmt.Errorf("cannot write %v", x)
		}
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0"
		}
		return s, nil
	case reflect.Slice:
		parts := make([]string, f.Len())
		for i := range f.Len() {
			s, err := scalar(f.Index(i))
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	}
	return "", fmt.Errorf("cannot write a %s", f.Type())
}
