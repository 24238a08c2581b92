package filter

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/cel-go/cel"

	"github.com/gwook/gwook/internal/event"
)

// modes are the ways an expression can run: the untracked program reading
// event.data lazily or decoding it whole, and the tracked program.
type modes struct {
	untracked, tracked cel.Program
	checked            *cel.Ast
}

func compileModes(t testing.TB, src string) modes {
	t.Helper()
	e := env()
	checked, iss := e.Compile(src)
	if iss.Err() != nil {
		t.Fatalf("compile %q: %v", src, iss.Err())
	}
	untracked, err := e.Program(checked, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		t.Fatal(err)
	}
	tracked, err := e.Program(checked, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(CostLimit))
	if err != nil {
		t.Fatal(err)
	}
	return modes{untracked: untracked, tracked: tracked, checked: checked}
}

type outcome struct {
	allowed bool
	err     error
}

// runAll runs the expression in every mode, by mode name.
func (m modes) runAll(n *event.Notification) map[string]outcome {
	out := map[string]outcome{}
	for name, r := range map[string]struct {
		p    cel.Program
		lazy bool
	}{
		"lazy":    {m.untracked, true},
		"decoded": {m.untracked, false},
		"tracked": {m.tracked, false},
	} {
		allowed, err := run(r.p, n, r.lazy)
		out[name] = outcome{allowed, err}
	}
	return out
}

const richData = `{
	"amount": 150, "price": 150.5, "count": 3, "neg": -2.5e1, "big": 1e400,
	"name": "Zoë", "escaped": "a\"b\u00e9\ud83d\ude00", "escaped_after_utf8": "é\n\"", "lone": "\ud800",
	"flag": true, "off": false, "nothing": null,
	"customer": {"plan": "pro", "address": {"country": "FR"}},
	"tags": ["vip", "eu"],
	"lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}],
	"mixed": [1, "1", true, null, {"a": 1}, [1]],
	"empty": {}, "none": [],
	"dup": 1, "dup": 2,
	"k\u0065y": "escaped key"
}`

func TestExpressionData(t *testing.T) {
	cases := []struct {
		expr string
		want bool
		err  string // substring of the error; "" for none
	}{
		// numbers are doubles that compare with ints
		{`event.data.amount > 100`, true, ""},
		{`event.data.price > 100`, true, ""},
		{`event.data.price > 150 && event.data.price < 151`, true, ""},
		{`event.data.amount == 150`, true, ""},
		{`event.data.amount == 150.0`, true, ""},
		{`event.data.amount == 150u`, true, ""},
		{`event.data.count == 3 && event.data.count < 3.5`, true, ""},
		{`event.data.neg == -25`, true, ""},
		{`event.data.big > 1e300`, true, ""},
		{`type(event.data.amount) == double`, true, ""},
		{`int(event.data.count) + 1 == 4`, true, ""},
		{`event.data.count + 1.0 == 4.0`, true, ""},
		{`event.data.count + 1 == 4`, false, "no such overload"},
		// strings
		{`event.data.name == "Zoë" && size(event.data.name) == 3`, true, ""},
		{`event.data.escaped == "a\"bé😀"`, true, ""},
		{`event.data.lone == "\uFFFD"`, true, ""},
		{`event.data.escaped_after_utf8 == "é\n\"" && size(event.data.escaped_after_utf8) == 3`, true, ""},
		{`"é\n\"" in [event.data.escaped_after_utf8] && ["é\n\""] == [event.data.escaped_after_utf8]`, true, ""},
		{`event.data.customer.plan.startsWith("p")`, true, ""},
		{`event.data.name.matches("^Z.ë$")`, true, ""},
		{`event.data.key == "escaped key"`, true, ""},
		// bools and null
		{`event.data.flag`, true, ""},
		{`!event.data.off`, true, ""},
		{`event.data.nothing == null`, true, ""},
		{`event.data.flag == true && event.data.off != true`, true, ""},
		// nested objects
		{`event.data.customer.plan == "pro"`, true, ""},
		{`event.data.customer.address.country == "FR"`, true, ""},
		{`event.data["customer"]["plan"] == "pro"`, true, ""},
		{`has(event.data.customer.plan) && !has(event.data.customer.tier)`, true, ""},
		{`"plan" in event.data.customer && !("tier" in event.data.customer)`, true, ""},
		{`size(event.data.customer) == 2`, true, ""},
		{`event.data.customer == {"plan": "pro", "address": {"country": "FR"}}`, true, ""},
		{`event.data.customer != {"plan": "free"}`, true, ""},
		{`size(event.data.empty) == 0 && event.data.empty == {}`, true, ""},
		{`event.data.dup == 2`, true, ""},
		{`type(event.data.customer) == map`, true, ""},
		// arrays
		{`event.data.tags[1] == "eu"`, true, ""},
		{`event.data.tags[1u] == "eu"`, true, ""},
		{`"vip" in event.data.tags`, true, ""},
		{`"us" in event.data.tags`, false, ""},
		{`1 in event.data.mixed && "1" in event.data.mixed && true in event.data.mixed`, true, ""},
		{`null in event.data.mixed && {"a": 1} in event.data.mixed && [1] in event.data.mixed`, true, ""},
		{`size(event.data.tags) == 2 && size(event.data.none) == 0`, true, ""},
		{`event.data.tags == ["vip", "eu"]`, true, ""},
		{`event.data.tags + ["us"] == ["vip", "eu", "us"]`, true, ""},
		{`event.data.lines[1].qty == 2`, true, ""},
		{`event.data.lines.exists(l, l.sku == "b" && l.qty > 1)`, true, ""},
		{`event.data.lines.all(l, l.qty >= 1)`, true, ""},
		{`event.data.lines.map(l, l.sku) == ["a", "b"]`, true, ""},
		{`event.data.customer.exists(k, k == "plan")`, true, ""},
		{`type(event.data.tags) == list`, true, ""},
		// top-level fields
		{`event.id == "evt_1" && event.type == "invoice.paid" && event.source == "billing"`, true, ""},
		{`event.project == "acme-prod" && event.user_id == "usr_42"`, true, ""},
		{`timestamp(event.time) > timestamp("2024-01-01T00:00:00Z")`, true, ""},
		{`has(event.id) && has(event.data)`, true, ""},
		// run-time errors
		{`event.data.plan == "pro"`, false, "no such key: plan"},
		{`event.data.customer.tier == "gold"`, false, "no such key: tier"},
		{`event.data.tags[2] == "x"`, false, "out of"},
		{`event.data.tags[-1] == "x"`, false, "out of"},
		{`event.data.name.x == 1`, false, "no such key"},
		{`event.data.amount`, false, "the result is double, not bool"},
		{`event.data.tags`, false, "the result is list, not bool"},
		{`event.data.nothing`, false, "the result is null_type, not bool"},
		{`event.data.customer.plan > 1`, false, "no such overload"},
	}
	n := testEvent("invoice.paid", richData)
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			for mode, got := range compileModes(t, c.expr).runAll(n) {
				if c.err == "" && got.err != nil {
					t.Errorf("%s: error %v", mode, got.err)
				} else if c.err != "" && (got.err == nil || !strings.Contains(got.err.Error(), c.err)) {
					t.Errorf("%s: error %v, want one with %q", mode, got.err, c.err)
				}
				if got.allowed != c.want {
					t.Errorf("%s: %v, want %v", mode, got.allowed, c.want)
				}
			}
			// And through the filter, whichever mode it picks.
			d := mustCompile(t, Spec{Expression: c.expr}).Evaluate(n)
			if d.Allowed != c.want || (d.Rule == RuleExpressionError) != (c.err != "") {
				t.Errorf("Evaluate = %+v", d)
			}
		})
	}
}

func TestCostLimitStopsExpensiveExpressions(t *testing.T) {
	big := testEvent("x", listData("items", 5000))
	cases := []string{
		`event.data.items.all(x, event.data.items.all(y, x + y >= 0.0))`,
		`event.data.items.map(x, event.data.items.map(y, y)).size() > 0`,
		`event.data.items.all(x, true)`,
		`event.data.items.exists(x, string(event.data.items.size()).size() < 0)`,
	}
	for _, src := range cases {
		t.Run(src, func(t *testing.T) {
			f := mustCompile(t, Spec{Expression: src})
			start := time.Now()
			d := f.Evaluate(big)
			elapsed := time.Since(start)
			if d.Allowed || d.Rule != RuleExpressionError || d.Err == nil ||
				!strings.Contains(d.Err.Error(), "cost limit exceeded") {
				t.Fatalf("Evaluate = %+v, want the cost limit", d)
			}
			t.Logf("stopped after %v", elapsed)
		})
	}
}

func TestLoopsWithinTheLimitRun(t *testing.T) {
	f := mustCompile(t, Spec{Expression: `event.data.items.all(x, x == 0)`})
	for _, size := range []int{0, 10, 1000} {
		if d := f.Evaluate(testEvent("x", listData("items", size))); !d.Allowed {
			t.Errorf("%d items: %+v", size, d)
		}
	}
}

func TestRunModeLimits(t *testing.T) {
	cases := []struct {
		expr        string
		provenSize  int // exact; 0 means never untracked
		lazyMaxSize int // exact
	}{
		// 2 reads (.amount and >), each allowed 2 x 1 MiB
		{`event.data.amount > 100 && event.source == "billing"`, maxProvenSize, maxProvenSize},
		{`event.type.startsWith("invoice.")`, maxProvenSize, maxProvenSize},
		// contains costs a unit per 10 characters of the string (times a unit
		// per 10 of the substring, rounded up): 64 KiB is the largest power
		// of two within the limit.
		{`event.data.note.contains("urgent")`, 64 << 10, maxProvenSize},
		{`event.data.a == 1 && event.data.b == 2 && event.data.c == 3 && event.data.d == 4`, maxProvenSize, 256 << 10},
		{`event.data.lines.exists(l, l.qty > 1)`, 1 << 10, 0},
		{`event.data.a.all(x, event.data.a.all(y, x == y))`, 0, 0},
	}
	for _, c := range cases {
		x, problems := compileExpression(c.expr)
		if len(problems) > 0 {
			t.Fatalf("%s: %+v", c.expr, problems)
		}
		if x.provenSize != c.provenSize || (x.untracked != nil) != (c.provenSize > 0) || x.lazyMaxSize != c.lazyMaxSize {
			t.Errorf("%s: untracked %v up to %d bytes, lazy up to %d; want untracked up to %d, lazy up to %d",
				c.expr, x.untracked != nil, x.provenSize, x.lazyMaxSize, c.provenSize, c.lazyMaxSize)
		}
	}
}

// The static proof behind untracked runs must bound the cost CEL tracks.
func TestProvenSizeBoundsActualCost(t *testing.T) {
	exprs := []string{
		`event.data.amount > 100 && event.source == "billing"`,
		`event.data.note.contains("urgent") || event.data.note.startsWith(event.source)`,
		`event.data.note.matches("^[a-z ]+$") && event.data.note + event.data.note != event.id`,
		`size(event.data.items) > 3 && event.data.items == event.data.items`,
		`"x" in event.data.items || event.data.items[0] == 0`,
		`event.data.items.exists(x, x > 1)`,
		`event.data.items.map(x, x + 1.0).filter(x, x > 3.0).size() > 0`,
		`event.data.tags.exists(t, t.contains("v"))`,
	}
	var events []*event.Notification
	for _, size := range []int{0, 10, 200, 2000} {
		data, err := json.Marshal(map[string]any{
			"amount": size,
			"note":   strings.Repeat("a b ", size),
			"items":  make([]int, size),
			"tags":   slicesOf("vip", size),
		})
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, testEvent("invoice.paid", string(data)))
	}
	for _, src := range exprs {
		x, problems := compileExpression(src)
		if len(problems) > 0 {
			t.Fatalf("%s: %+v", src, problems)
		}
		m := compileModes(t, src)
		checked := 0
		for _, n := range events {
			size := eventSize(n)
			if x.untracked == nil || size > x.provenSize {
				continue
			}
			est, err := env().EstimateCost(m.checked, sizeBound(size))
			if err != nil {
				t.Fatal(err)
			}
			actual := trackedCost(t, m.tracked, n)
			if actual > est.Max || actual > CostLimit {
				t.Errorf("%s on %d bytes: actual cost %d, estimate %d, limit %d", src, size, actual, est.Max, CostLimit)
			}
			checked++
		}
		if checked == 0 {
			t.Errorf("%s: no event within the proven size %d", src, x.provenSize)
		}
	}
}

func slicesOf(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// trackedCost runs a tracked program on n and returns the cost CEL counted.
func trackedCost(t *testing.T, p cel.Program, n *event.Notification) uint64 {
	t.Helper()
	st := &evalState{event: eventValue{n: n}}
	_, det, _ := p.Eval(st) // errors (an index out of range) cost too
	if det == nil || det.ActualCost() == nil {
		t.Fatal("no cost tracked")
	}
	return *det.ActualCost()
}

func TestDecodeJSONErrors(t *testing.T) {
	cases := map[string]error{
		`{"a": 1`:         errMalformed,
		`{"a": [1, }`:     errMalformed,
		`{"a": "\x"}`:     errMalformed,
		`{"a": 1.2.3}`:    errMalformed,
		deepObject(10001): errTooDeep,
	}
	for raw, want := range cases {
		if _, err := decodeJSON([]byte(raw)); !errors.Is(err, want) {
			t.Errorf("decodeJSON(%.20q) = %v, want %v", raw, err, want)
		}
	}
	if _, err := decodeJSON([]byte(deepObject(10000))); err != nil {
		t.Errorf("decodeJSON of 10000 levels: %v", err)
	}
}

func deepObject(depth int) string {
	return strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
}

func TestLazyReadsOfMalformedData(t *testing.T) {
	// Event validation keeps malformed data out; reading it must still fail
	// cleanly rather than panic.
	for _, raw := range []string{`{"a": 1`, `{"a": [1,`, `{"a": {"b": }`, `{"a": "\x"}`, `{"a": 1.2.3}`, `{`} {
		for _, src := range []string{`event.data.a == 1`, `event.data.a[0] == 1`, `event.data.a.b == 1`, `size(event.data) == 1`} {
			for mode, got := range compileModes(t, src).runAll(testEvent("x", raw)) {
				if got.allowed {
					t.Errorf("%s on %q (%s): allowed", src, raw, mode)
				}
			}
		}
	}
}
