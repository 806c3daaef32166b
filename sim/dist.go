package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written in scenario files as a Go duration
// string ("250ms", "5m", "1h30m"). Negative durations are refused.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration, "0s" for zero.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a Go duration string such as "30s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := parseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q: want a number with a unit, such as \"250ms\", \"30s\" or \"5m\"", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("bad duration %q: must not be negative", s)
	}
	return v, nil
}

// distKind is the shape of a [Dist].
type distKind uint8

const (
	distConst distKind = iota
	distUniform
	distExp
	distPareto
)

// paretoCap caps a Pareto draw at this many times its minimum.
const paretoCap = 1000

// Dist is a distribution of durations (latencies, hold times), written in
// scenario files as one of:
//
//	"2ms"          always 2ms
//	"1ms..5ms"     uniform between 1ms and 5ms
//	"exp(10ms)"    exponential with mean 10ms (capped at 20 times the mean)
//	"pareto(2ms, 1.5)"  heavy-tailed: Pareto with minimum 2ms and shape 1.5
//	               (P(X > x) = (2ms/x)^1.5; capped at 1000 times the minimum)
//
// The zero Dist is always zero; where a field has a default, it means the
// default.
type Dist struct {
	kind  distKind
	a, b  time.Duration
	shape float64 // of a Pareto distribution
}

// Const returns the distribution that is always d.
func Const(d time.Duration) Dist { return Dist{kind: distConst, a: d} }

// Uniform returns the uniform distribution on [lo, hi].
func Uniform(lo, hi time.Duration) Dist { return Dist{kind: distUniform, a: lo, b: hi}.norm() }

// Exp returns the exponential distribution with the given mean, capped at
// 20 times the mean.
func Exp(mean time.Duration) Dist { return Dist{kind: distExp, a: mean}.norm() }

// Pareto returns the Pareto distribution with minimum lo and the given
// shape (above 0; the smaller, the heavier the tail), capped at 1000
// times lo.
func Pareto(lo time.Duration, shape float64) Dist {
	return Dist{kind: distPareto, a: lo, shape: shape}.norm()
}

// IsZero reports whether d is always zero. A zero Dist in a scenario
// means the field's default; written in a file, it is an error.
func (d Dist) IsZero() bool { return d.a == 0 && d.b == 0 }

// norm returns the zero Dist for any distribution that only draws zero,
// so that there is one zero value.
func (d Dist) norm() Dist {
	if d.IsZero() {
		return Dist{}
	}
	return d
}

// Max is the largest value d can draw.
func (d Dist) Max() time.Duration {
	switch d.kind {
	case distUniform:
		return d.b
	case distExp:
		return 20 * d.a
	case distPareto:
		return paretoCap * d.a
	}
	return d.a
}

// Mean is d's mean.
func (d Dist) Mean() time.Duration {
	switch d.kind {
	case distUniform:
		return (d.a + d.b) / 2
	case distPareto: // of the uncapped distribution; infinite at shape ≤ 1
		if d.shape <= 1 {
			return d.Max()
		}
		return time.Duration(float64(d.a) * d.shape / (d.shape - 1))
	}
	return d.a
}

// Draw draws one value from r.
func (d Dist) Draw(r *rand.Rand) time.Duration {
	switch d.kind {
	case distUniform:
		if d.b <= d.a {
			return d.a
		}
		return d.a + time.Duration(r.Int64N(int64(d.b-d.a)+1))
	case distExp:
		v := time.Duration(r.ExpFloat64() * float64(d.a))
		return min(v, 20*d.a)
	case distPareto:
		u := 1 - r.Float64() // in (0, 1]
		v := float64(d.a) * math.Pow(u, -1/d.shape)
		return time.Duration(min(v, float64(paretoCap*d.a)))
	}
	return d.a
}

// Scale returns d with every value multiplied by f.
func (d Dist) Scale(f float64) Dist {
	d.a = time.Duration(float64(d.a) * f)
	d.b = time.Duration(float64(d.b) * f)
	return d // a Pareto keeps its shape
}

// String formats d in the scenario syntax.
func (d Dist) String() string {
	switch d.kind {
	case distUniform:
		return d.a.String() + ".." + d.b.String()
	case distExp:
		return "exp(" + d.a.String() + ")"
	case distPareto:
		return "pareto(" + d.a.String() + ", " + strconv.FormatFloat(d.shape, 'g', -1, 64) + ")"
	}
	return d.a.String()
}

// MarshalText writes d in the scenario syntax.
func (d Dist) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads d in the scenario syntax.
func (d *Dist) UnmarshalText(b []byte) error {
	v, err := ParseDist(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseDist reads a distribution: "2ms", "1ms..5ms" or "exp(10ms)".
func ParseDist(s string) (Dist, error) {
	s = strings.TrimSpace(s)
	if inner, ok := strings.CutPrefix(s, "exp("); ok {
		inner, ok = strings.CutSuffix(inner, ")")
		if !ok {
			return Dist{}, fmt.Errorf("bad distribution %q: exp( without a closing )", s)
		}
		m, err := parseDuration(inner)
		if err != nil {
			return Dist{}, fmt.Errorf("bad distribution %q: %v", s, err)
		}
		return Exp(m), nil
	}
	if inner, ok := strings.CutPrefix(s, "pareto("); ok {
		inner, ok = strings.CutSuffix(inner, ")")
		if !ok {
			return Dist{}, fmt.Errorf("bad distribution %q: pareto( without a closing )", s)
		}
		lo, sh, ok := strings.Cut(inner, ",")
		if !ok {
			return Dist{}, fmt.Errorf("bad distribution %q: want pareto(minimum, shape), such as \"pareto(2ms, 1.5)\"", s)
		}
		m, err := parseDuration(lo)
		if err != nil {
			return Dist{}, fmt.Errorf("bad distribution %q: %v", s, err)
		}
		shape, err := strconv.ParseFloat(strings.TrimSpace(sh), 64)
		if err != nil || math.IsNaN(shape) || math.IsInf(shape, 0) || shape <= 0 {
			return Dist{}, fmt.Errorf("bad distribution %q: the shape must be a number above 0, such as 1.5", s)
		}
		return Pareto(m, shape), nil
	}
	if lo, hi, ok := strings.Cut(s, ".."); ok {
		a, err := parseDuration(lo)
		if err != nil {
			return Dist{}, fmt.Errorf("bad distribution %q: %v", s, err)
		}
		b, err := parseDuration(hi)
		if err != nil {
			return Dist{}, fmt.Errorf("bad distribution %q: %v", s, err)
		}
		if b < a {
			return Dist{}, fmt.Errorf("bad distribution %q: the upper bound is below the lower", s)
		}
		return Uniform(a, b), nil
	}
	v, err := parseDuration(s)
	if err != nil {
		return Dist{}, fmt.Errorf("bad distribution %q: want \"2ms\", \"1ms..5ms\", \"exp(10ms)\" or \"pareto(2ms, 1.5)\"", s)
	}
	return Const(v), nil
}
