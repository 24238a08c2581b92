package filter

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// compileTimeBound is far above any compile time seen (well under 10 ms);
// reaching it means some input makes compilation run away.
const compileTimeBound = 2 * time.Second

func FuzzCompile(f *testing.F) {
	for _, seed := range []string{
		`event.data.amount > 100 && event.source == "billing"`,
		`event.type.startsWith("invoice.") || event.data.customer.plan in ["pro", "team"]`,
		`event.data.lines.exists(l, l.qty > 1) && size(event.data.tags) < 3`,
		`has(event.data.a) ? event.data.a.b[0] == 1.0 : event.data["c"] != null`,
		`timestamp(event.time) > timestamp("2024-01-01T00:00:00Z")`,
		`event.data.name.matches("^[a-z]+$")`,
		`[1, 2, 3].map(x, x * 2).filter(y, y > 2).size() == 2`,
		`event.tpye == "x"`,
		`event.type ==`,
		`((((((((((true))))))))))`,
		"event.data.a\n&& \"unterminated",
		`{"a": [1, {"b": b"bytes"}]}.a[1].b == b"bytes"`,
		`1u + 2u == 3u && -1 < 0 && 1.5e3 > 0.0 && "\u00e9" == "é"`,
		`!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!true`,
		strings.Repeat("event.data.a == 1 || ", 100) + "false",
		strings.Repeat("[", 50) + strings.Repeat("]", 50) + " == []",
	} {
		f.Add(seed)
	}
	n := testEvent("invoice.paid", richData)
	f.Fuzz(func(t *testing.T, src string) {
		start := time.Now()
		filter, err := Compile(Spec{Expression: src})
		if elapsed := time.Since(start); elapsed > compileTimeBound {
			t.Fatalf("compiling %d bytes took %v", len(src), elapsed)
		}
		if err != nil {
			var ce *CompileError
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("error %v (%T) is not a *CompileError with problems", err, err)
			}
			for _, p := range ce.Problems {
				if p.Field != "expression" || p.Rule == "" || p.Detail == "" {
					t.Fatalf("malformed problem %+v", p)
				}
			}
			return
		}
		if src == "" {
			return
		}
		d := filter.Evaluate(n)
		checkDecision(t, d)
	})
}

// checkDecision checks that a Decision is consistent in itself.
func checkDecision(t *testing.T, d Decision) {
	t.Helper()
	switch {
	case d.Allowed && (d.Rule != RuleNone || d.Err != nil):
		t.Fatalf("allowed with a rule or an error: %+v", d)
	case !d.Allowed && d.Rule == RuleNone:
		t.Fatalf("not allowed without a rule: %+v", d)
	case (d.Rule == RuleExpressionError) != (d.Err != nil):
		t.Fatalf("error and rule disagree: %+v", d)
	case d.Reason == "":
		t.Fatalf("no reason: %+v", d)
	}
}

// fuzzExpressions read event.data in many ways; FuzzEvaluate runs each on
// arbitrary data.
var fuzzExpressions = []string{
	`event.data.a == 1`,
	`has(event.data.a) && event.data.a.b[0] > 1`,
	`"k" in event.data && size(event.data.k) > 0`,
	`event.data.s.startsWith("x") || event.data.s == "\u00e9"`,
	`size(event.data.s) == 2 || event.data.s.endsWith("\"") || event.data.s.contains("\\")`,
	`"\n" in event.data.l || "é\"" in event.data.l || size(event.data.l[0]) == 1`,
	`event.data.l[1] == event.data.l[0]`,
	`event.data == {"a": 1.0}`,
	`event.data.l == [1, "a", null, true, {"b": []}]`,
	`"v" in event.data.l || 2 in event.data.l || {"a": 1} in event.data.l`,
	`event.data.a.b.c.d`,
	`event.data.exists(k, k == "a")`,
	`event.data.l.all(x, x != null)`,
	`size(event.data) > 2`,
}

func FuzzEvaluate(f *testing.F) {
	for _, seed := range []string{
		richData,
		`{}`,
		`{"a": 1}`,
		`{"a": {"b": [2, 3]}, "k": "v", "s": "xyz"}`,
		`{"l": [1, "a", null, true, {"b": []}], "a": 1.0}`,
		`{"a": 1, "a": {"b": [5]}}`,
		`{"\u006b": [1], "s": "\u00e9", "l": ["\ud83d\ude00", 2, 2]}`,
		`{"a": 1e400, "l": [-0, 0.5e-400]}`,
		`{"s": "é\n", "l": ["é\"x", "\u00e9\""]}`,
		`{"a": {"b": {"c": {"d": true}}}}`,
		`[1, 2]`,
		`{"a": 1`,
		`{"a": "\x"}`,
		"{\"s\": \"\xff\xfe\"}",
		``,
	} {
		f.Add([]byte(seed))
	}
	type compiled struct {
		filter *Filter
		modes  modes
	}
	var exprs []compiled
	for _, src := range fuzzExpressions {
		exprs = append(exprs, compiled{mustCompile(f, Spec{Expression: src}), compileModes(f, src)})
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n := testEvent("invoice.paid", string(data))
		valid := json.Valid(data) && isObject(data)
		for i, c := range exprs {
			checkDecision(t, c.filter.Evaluate(n))
			outcomes := c.modes.runAll(n)
			if !valid {
				continue
			}
			// On valid data, lazy reads and whole decoding agree.
			lazy := outcomes["lazy"]
			for mode, o := range outcomes {
				if o.err != nil && strings.Contains(o.err.Error(), "cost limit exceeded") {
					continue // only the tracked mode has a limit
				}
				if o.allowed != lazy.allowed || (o.err == nil) != (lazy.err == nil) {
					t.Fatalf("%s on %q: %s gives %v (%v), lazy gives %v (%v)",
						fuzzExpressions[i], data, mode, o.allowed, o.err, lazy.allowed, lazy.err)
				}
			}
		}
	})
}
