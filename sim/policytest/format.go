package policytest

import (
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/qorbgo/qorb/pool"
)

// GoString writes the schedule as a Go composite literal with only its
// non-zero fields, its durations as Go duration strings and its
// distributions as in scenario files (1m41s, exp(5ms)): rapid prints a
// drawn schedule with it.
func (s Schedule) GoString() string { return formatValue(s) }

// formatPolicy writes p as a Go composite literal with only the fields
// set (a zero field takes the pool's default), durations as duration
// strings, and the Rebalancer, Picker and Backoff as their values.
func formatPolicy(p pool.Policy) string {
	s := formatValue(p)
	if s == "pool.Policy{}" {
		s += " (every field its default)"
	}
	return s
}

// maxFormatDepth bounds how deep formatValue goes into nested values,
// so that a value that refers to itself ends.
const maxFormatDepth = 8

var durationType = reflect.TypeFor[time.Duration]()

// formatValue writes v as one writes it in Go, readably: a composite
// literal with only its non-zero fields; a value with a String method
// (a time.Duration, a sim.Dist) as that string; a function by its
// name.
func formatValue(v any) string {
	var b strings.Builder
	writeValue(&b, reflect.ValueOf(v), true, 0, true)
	return b.String()
}

// writeValue writes v to b. typed says whether a composite literal names
// its type (elements of a slice of structs leave it out, as Go allows);
// top is the value formatValue was given, whose own String method is
// not used (GoString calls formatValue).
func writeValue(b *strings.Builder, v reflect.Value, typed bool, depth int, top bool) {
	if !v.IsValid() {
		b.WriteString("nil")
		return
	}
	if depth > maxFormatDepth {
		b.WriteString("…")
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Func, reflect.Map, reflect.Slice, reflect.Chan:
		if v.IsNil() {
			b.WriteString("nil")
			return
		}
	}
	if !top && v.CanInterface() {
		if s, ok := v.Interface().(fmt.Stringer); ok {
			b.WriteString(s.String())
			return
		}
	}
	switch v.Kind() {
	case reflect.Interface:
		writeValue(b, v.Elem(), true, depth+1, false)
	case reflect.Pointer:
		b.WriteString("&")
		writeValue(b, v.Elem(), true, depth+1, false)
	case reflect.Struct:
		if typed {
			b.WriteString(v.Type().String())
		}
		b.WriteString("{")
		n := 0
		for i := range v.NumField() {
			f := v.Field(i)
			if f.IsZero() {
				continue
			}
			if n > 0 {
				b.WriteString(", ")
			}
			n++
			b.WriteString(v.Type().Field(i).Name + ": ")
			writeValue(b, f, true, depth+1, false)
		}
		b.WriteString("}")
	case reflect.Slice, reflect.Array:
		b.WriteString(v.Type().String() + "{")
		elided := v.Type().Elem().Kind() == reflect.Struct
		for i := range v.Len() {
			if i > 0 {
				b.WriteString(", ")
			}
			writeValue(b, v.Index(i), !elided, depth+1, false)
		}
		b.WriteString("}")
	case reflect.Map:
		b.WriteString(v.Type().String() + "{")
		var kvs []string
		for it := v.MapRange(); it.Next(); {
			var kv strings.Builder
			writeValue(&kv, it.Key(), true, depth+1, false)
			kv.WriteString(": ")
			writeValue(&kv, it.Value(), true, depth+1, false)
			kvs = append(kvs, kv.String())
		}
		slices.Sort(kvs)
		b.WriteString(strings.Join(kvs, ", ") + "}")
	case reflect.Func:
		name := "func"
		if fn := runtime.FuncForPC(v.Pointer()); fn != nil {
			name = fn.Name()
			if i := strings.LastIndex(name, "/"); i >= 0 {
				name = name[i+1:]
			}
		}
		b.WriteString(name)
	case reflect.String:
		b.WriteString(strconv.Quote(v.String()))
	case reflect.Bool:
		b.WriteString(strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.Type() == durationType || v.Type().ConvertibleTo(durationType) && strings.HasSuffix(v.Type().Name(), "Duration") {
			b.WriteString(time.Duration(v.Int()).String()) // an unexported duration, or a named one without String
			return
		}
		b.WriteString(strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		b.WriteString(strconv.FormatUint(v.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		b.WriteString(strconv.FormatFloat(v.Float(), 'g', -1, 64))
	default: // complex numbers, channels, unsafe pointers
		b.WriteString(v.Type().String())
	}
}
