package filter

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/gwook/gwook/internal/event"
)

// testEvent returns a valid event of type eventType with the given data.
func testEvent(eventType, data string) *event.Notification {
	return &event.Notification{
		ID:      "evt_1",
		Type:    eventType,
		Source:  "billing",
		Project: "acme-prod",
		UserID:  "usr_42",
		Time:    "2024-05-01T12:00:00Z",
		Data:    json.RawMessage(data),
	}
}

func mustCompile(t testing.TB, spec Spec) *Filter {
	t.Helper()
	f, err := Compile(spec)
	if err != nil {
		t.Fatalf("Compile(%+v): %v", spec, err)
	}
	return f
}

func TestEvaluateRules(t *testing.T) {
	cases := []struct {
		name       string
		spec       Spec
		eventType  string
		data       string
		allowed    bool
		rule       Rule
		reason     string // exact, unless reasonPart is set
		reasonPart string // substring of the reason
	}{
		{
			name:      "include miss",
			spec:      Spec{IncludeTypes: []string{"invoice.*", "user.deleted"}},
			eventType: "user.created",
			rule:      RuleIncludeTypes,
			reason:    `event type "user.created" matches no include_types pattern`,
		},
		{
			name:      "include exact hit",
			spec:      Spec{IncludeTypes: []string{"invoice.*", "user.deleted"}},
			eventType: "user.deleted",
			allowed:   true,
			reason:    "passed include_types",
		},
		{
			name:      "include prefix hit",
			spec:      Spec{IncludeTypes: []string{"invoice.*"}},
			eventType: "invoice.paid",
			allowed:   true,
			reason:    "passed include_types",
		},
		{
			name:      "prefix with dot does not match the bare prefix",
			spec:      Spec{IncludeTypes: []string{"invoice.*"}},
			eventType: "invoice",
			rule:      RuleIncludeTypes,
			reason:    `event type "invoice" matches no include_types pattern`,
		},
		{
			name:      "prefix with dot does not match a longer word",
			spec:      Spec{IncludeTypes: []string{"invoice.*"}},
			eventType: "invoices.paid",
			rule:      RuleIncludeTypes,
			reason:    `event type "invoices.paid" matches no include_types pattern`,
		},
		{
			name:      "prefix without dot matches a longer word",
			spec:      Spec{IncludeTypes: []string{"invoice*"}},
			eventType: "invoices.paid",
			allowed:   true,
			reason:    "passed include_types",
		},
		{
			name:      "star includes everything",
			spec:      Spec{IncludeTypes: []string{"*"}},
			eventType: "anything.at-all_1",
			allowed:   true,
			reason:    "passed include_types",
		},
		{
			name:      "empty include delivers nothing",
			spec:      Spec{IncludeTypes: []string{}},
			eventType: "invoice.paid",
			rule:      RuleIncludeTypes,
			reason:    "include_types is empty, so no event type is delivered",
		},
		{
			name:      "nil include delivers everything",
			spec:      Spec{},
			eventType: "invoice.paid",
			allowed:   true,
			reason:    "the filter has no rules, so every event is delivered",
		},
		{
			name:      "exclude exact hit",
			spec:      Spec{ExcludeTypes: []string{"invoice.draft"}},
			eventType: "invoice.draft",
			rule:      RuleExcludeTypes,
			reason:    `event type "invoice.draft" matches exclude_types pattern "invoice.draft"`,
		},
		{
			name:      "exclude prefix hit after include",
			spec:      Spec{IncludeTypes: []string{"invoice.*"}, ExcludeTypes: []string{"user.*", "invoice.internal.*"}},
			eventType: "invoice.internal.sync",
			rule:      RuleExcludeTypes,
			reason:    `event type "invoice.internal.sync" matches exclude_types pattern "invoice.internal.*"`,
		},
		{
			name:      "exclude star",
			spec:      Spec{ExcludeTypes: []string{"*"}},
			eventType: "invoice.paid",
			rule:      RuleExcludeTypes,
			reason:    `event type "invoice.paid" matches exclude_types pattern "*"`,
		},
		{
			name:      "exclude miss",
			spec:      Spec{ExcludeTypes: []string{"invoice.draft"}},
			eventType: "invoice.paid",
			allowed:   true,
			reason:    "passed exclude_types",
		},
		{
			name:      "include decides before a failing expression",
			spec:      Spec{IncludeTypes: []string{"user.*"}, Expression: `event.data.plan == "pro"`},
			eventType: "invoice.paid",
			data:      `{}`,
			rule:      RuleIncludeTypes,
			reason:    `event type "invoice.paid" matches no include_types pattern`,
		},
		{
			name:      "exclude decides before the expression",
			spec:      Spec{ExcludeTypes: []string{"invoice.paid"}, Expression: `true`},
			eventType: "invoice.paid",
			rule:      RuleExcludeTypes,
			reason:    `event type "invoice.paid" matches exclude_types pattern "invoice.paid"`,
		},
		{
			name: "expression true",
			spec: Spec{
				IncludeTypes: []string{"invoice.*"},
				ExcludeTypes: []string{"invoice.draft"},
				Expression:   `event.data.amount > 100 && event.source == "billing"`,
			},
			eventType: "invoice.paid",
			data:      `{"amount": 150}`,
			allowed:   true,
			reason:    "passed include_types, exclude_types and expression",
		},
		{
			name:      "expression false",
			spec:      Spec{IncludeTypes: []string{"invoice.*"}, Expression: `event.data.amount > 100`},
			eventType: "invoice.paid",
			data:      `{"amount": 99.5}`,
			rule:      RuleExpression,
			reason:    "expression is false",
		},
		{
			name:      "missing key is an expression error",
			spec:      Spec{Expression: `event.data.plan == "pro"`},
			eventType: "user.created",
			data:      `{"amount": 1}`,
			rule:      RuleExpressionError,
			reason:    "expression failed: no such key: plan",
		},
		{
			name:      "dyn result that is not a bool is an expression error",
			spec:      Spec{Expression: `event.data.amount`},
			eventType: "user.created",
			data:      `{"amount": 1}`,
			rule:      RuleExpressionError,
			reason:    "expression failed: the result is double, not bool",
		},
		{
			name:      "dyn result that is a bool decides",
			spec:      Spec{Expression: `event.data.enabled`},
			eventType: "user.created",
			data:      `{"enabled": true}`,
			allowed:   true,
			reason:    "passed expression",
		},
		{
			name:      "data that is not an object fails only expressions that read it",
			spec:      Spec{Expression: `has(event.data.x)`},
			eventType: "user.created",
			data:      `[1, 2]`,
			rule:      RuleExpressionError,
			reason:    "expression failed: event data is not a JSON object",
		},
		{
			name:      "data that is not an object does not matter to other expressions",
			spec:      Spec{Expression: `event.type == "user.created"`},
			eventType: "user.created",
			data:      `nonsense`,
			allowed:   true,
			reason:    "passed expression",
		},
		{
			name:       "cost limit is an expression error",
			spec:       Spec{Expression: `event.data.items.all(x, event.data.items.all(y, x + y >= 0.0))`},
			eventType:  "user.created",
			data:       listData("items", 500),
			rule:       RuleExpressionError,
			reasonPart: "cost limit exceeded",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := c.data
			if data == "" {
				data = `{}`
			}
			d := mustCompile(t, c.spec).Evaluate(testEvent(c.eventType, data))
			if d.Allowed != c.allowed || d.Rule != c.rule {
				t.Fatalf("Evaluate = %+v, want allowed %v, rule %q", d, c.allowed, c.rule)
			}
			if c.reasonPart != "" {
				if !strings.Contains(d.Reason, c.reasonPart) {
					t.Errorf("Reason = %q, want it to contain %q", d.Reason, c.reasonPart)
				}
			} else if d.Reason != c.reason {
				t.Errorf("Reason = %q, want %q", d.Reason, c.reason)
			}
			if (d.Err != nil) != (c.rule == RuleExpressionError) {
				t.Errorf("Err = %v for rule %q", d.Err, d.Rule)
			}
			if d.Err != nil && d.Reason != "expression failed: "+d.Err.Error() {
				t.Errorf("Reason %q does not carry Err %q", d.Reason, d.Err)
			}
		})
	}
}

// listData returns a JSON object whose key holds a list of n zeros.
func listData(key string, n int) string {
	b, err := json.Marshal(map[string]any{key: make([]int, n)})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestNilFilterDeliversEverything(t *testing.T) {
	var f *Filter
	if d := f.Evaluate(testEvent("x", `{}`)); !d.Allowed || d.Rule != RuleNone {
		t.Fatalf("nil filter: %+v", d)
	}
}

func TestCompileErrors(t *testing.T) {
	longPattern := strings.Repeat("a", MaxPatternLength+1)
	manyPatterns := make([]string, MaxPatterns+1)
	for i := range manyPatterns {
		manyPatterns[i] = "a"
	}
	type want struct {
		field, rule, detail string // detail: substring of Detail
		line, column        int
	}
	cases := []struct {
		name string
		spec Spec
		want []want
	}{
		{
			name: "syntax error with its position",
			spec: Spec{Expression: `event.type ==`},
			want: []want{{"expression", ProblemSyntax, "1:14: Syntax error: mismatched input '<EOF>'", 1, 14}},
		},
		{
			name: "syntax error on a later line",
			spec: Spec{Expression: "event.type == \"a\" &&\n  event.source = 'x'"},
			want: []want{
				{"expression", ProblemSyntax, "2:16: Syntax error: token recognition error at: '= '", 2, 16},
				{"expression", ProblemSyntax, "2:18: Syntax error: extraneous input", 2, 18},
			},
		},
		{
			name: "expression that is not a bool",
			spec: Spec{Expression: `event.type`},
			want: []want{{"expression", ProblemType, "1:6: the expression must be a bool, but it is string", 1, 6}},
		},
		{
			name: "expression that is a list",
			spec: Spec{Expression: `[event.type]`},
			want: []want{{"expression", ProblemType, "the expression must be a bool, but it is list(string)", 1, 1}},
		},
		{
			name: "unknown field of event",
			spec: Spec{Expression: `event.type == "a" || event.tpye == "b"`},
			want: []want{{"expression", ProblemType, "1:27: undefined field 'tpye'", 1, 27}},
		},
		{
			name: "unknown variable",
			spec: Spec{Expression: `evnt.type == "a"`},
			want: []want{{"expression", ProblemType, "1:1: undeclared reference to 'evnt'", 1, 1}},
		},
		{
			name: "wrong argument type",
			spec: Spec{Expression: `event.data[1] == 2`},
			want: []want{{"expression", ProblemType, "found no matching overload for '_[_]'", 1, 11}},
		},
		{
			name: "creating an event",
			spec: Spec{Expression: `gwook.filter.Event{id: "x"} == event`},
			want: []want{{"expression", ProblemType, "an event cannot be created in an expression", 1, 19}},
		},
		{
			name: "malformed regular expression",
			spec: Spec{Expression: `event.type.matches("(")`},
			want: []want{{"expression", ProblemInvalid, "error parsing regexp", 0, 0}},
		},
		{
			name: "too long expression",
			spec: Spec{Expression: `event.type == "` + strings.Repeat("a", MaxExpressionLength) + `"`},
			want: []want{{"expression", ProblemTooLong, "at most 4096 bytes", 0, 0}},
		},
		{
			name: "too deep expression",
			spec: Spec{Expression: strings.Repeat("(", 100) + "true" + strings.Repeat(")", 100)},
			want: []want{{"expression", ProblemSyntax, "recursion limit exceeded", 0, 0}},
		},
		{
			name: "bad patterns",
			spec: Spec{
				IncludeTypes: []string{"ok.*", "has space", "", "a*b", "*a", "a**", longPattern},
				ExcludeTypes: []string{"é"},
			},
			want: []want{
				{"include_types[1]", ProblemPattern, `"has space" is not a pattern`, 0, 0},
				{"include_types[2]", ProblemPattern, `"" is not a pattern`, 0, 0},
				{"include_types[3]", ProblemPattern, `"a*b" is not a pattern`, 0, 0},
				{"include_types[4]", ProblemPattern, `"*a" is not a pattern`, 0, 0},
				{"include_types[5]", ProblemPattern, `"a**" is not a pattern`, 0, 0},
				{"include_types[6]", ProblemTooLong, "at most 256 characters, got 257", 0, 0},
				{"exclude_types[0]", ProblemPattern, `"é" is not a pattern`, 0, 0},
			},
		},
		{
			name: "too many patterns",
			spec: Spec{ExcludeTypes: manyPatterns},
			want: []want{{"exclude_types", ProblemTooMany, "at most 100 patterns are allowed, got 101", 0, 0}},
		},
		{
			name: "every problem at once",
			spec: Spec{IncludeTypes: []string{"a b"}, ExcludeTypes: []string{"c d"}, Expression: "event.nope"},
			want: []want{
				{"include_types[0]", ProblemPattern, `"a b"`, 0, 0},
				{"exclude_types[0]", ProblemPattern, `"c d"`, 0, 0},
				{"expression", ProblemType, "1:6: undefined field 'nope'", 1, 6},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Compile(c.spec)
			if f != nil {
				t.Fatal("Compile returned a filter along with an error")
			}
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T) is not a *CompileError", err, err)
			}
			if len(ce.Problems) != len(c.want) {
				t.Fatalf("problems = %+v, want %d", ce.Problems, len(c.want))
			}
			for i, w := range c.want {
				p := ce.Problems[i]
				if p.Field != w.field || p.Rule != w.rule || !strings.Contains(p.Detail, w.detail) ||
					p.Line != w.line || p.Column != w.column {
					t.Errorf("problem %d = %+v, want %+v", i, p, w)
				}
				if !strings.Contains(err.Error(), p.Field+": "+p.Detail) {
					t.Errorf("Error() = %q lacks problem %d", err.Error(), i)
				}
			}
		})
	}
}

func TestCompileAcceptsValidPatterns(t *testing.T) {
	spec := Spec{
		IncludeTypes: []string{"*", "a", "invoice.*", "invoice*", "A-b_c.9", strings.Repeat("a", MaxPatternLength)},
		ExcludeTypes: make([]string, MaxPatterns),
	}
	for i := range spec.ExcludeTypes {
		spec.ExcludeTypes[i] = "x.*"
	}
	mustCompile(t, spec)
}

func TestCompileAcceptsLongRealisticExpressions(t *testing.T) {
	var clauses []string
	for i := range 100 {
		clauses = append(clauses, `event.data.customer.plan == "plan`+strings.Repeat("x", i%7)+`"`)
	}
	for _, src := range []string{
		strings.Join(clauses, " || "),
		"has(event.data" + strings.Repeat(".a", 30) + ")",
		strings.Repeat("1 + ", 30) + "1 > 0",
	} {
		if _, err := Compile(Spec{Expression: src}); err != nil {
			t.Errorf("%.60s...: %v", src, err)
		}
	}
}

func TestSpecIsACopy(t *testing.T) {
	in := Spec{IncludeTypes: []string{"a.*"}, ExcludeTypes: []string{}, Expression: "true"}
	f := mustCompile(t, in)
	in.IncludeTypes[0] = "b.*"
	got := f.Spec()
	if got.IncludeTypes[0] != "a.*" {
		t.Fatalf("filter changed with the caller's slice: %+v", got)
	}
	if got.ExcludeTypes == nil || len(got.ExcludeTypes) != 0 {
		t.Fatalf("empty ExcludeTypes not kept empty: %#v", got.ExcludeTypes)
	}
	got.IncludeTypes[0] = "c.*"
	if f.Spec().IncludeTypes[0] != "a.*" {
		t.Fatal("Spec() exposes the filter's slice")
	}
	if d := f.Evaluate(testEvent("b.x", `{}`)); d.Allowed {
		t.Fatalf("filter follows a changed Spec: %+v", d)
	}
	if nilSpec := mustCompile(t, Spec{}).Spec(); nilSpec.IncludeTypes != nil {
		t.Fatalf("nil IncludeTypes not kept nil: %#v", nilSpec.IncludeTypes)
	}
}

func TestTypes(t *testing.T) {
	cases := []struct {
		name      string
		types     Types
		eventType string
		want      bool
	}{
		{"nil include", Types{}, "a.b", true},
		{"empty include", Types{Include: []string{}}, "a.b", false},
		{"include hit", Types{Include: []string{"a.*"}}, "a.b", true},
		{"include miss", Types{Include: []string{"a.*"}}, "b.a", false},
		{"exclude hit", Types{Exclude: []string{"a.b"}}, "a.b", false},
		{"exclude after include", Types{Include: []string{"a.*"}, Exclude: []string{"a.b"}}, "a.b", false},
		{"global empty include is everything", GlobalTypes([]string{}, nil), "a.b", true},
		{"global nil include is everything", GlobalTypes(nil, []string{"x.*"}), "a.b", true},
		{"global exclude", GlobalTypes(nil, []string{"a.*"}), "a.b", false},
		{"global include", GlobalTypes([]string{"x.*"}, nil), "a.b", false},
	}
	for _, c := range cases {
		if got := c.types.Allows(c.eventType); got != c.want {
			t.Errorf("%s: Allows(%q) = %v, want %v", c.name, c.eventType, got, c.want)
		}
	}
}

func TestConcurrentEvaluate(t *testing.T) {
	f := mustCompile(t, Spec{
		IncludeTypes: []string{"invoice.*"},
		Expression:   `event.data.amount > 100 && event.data.customer.plan == "pro"`,
	})
	loop := mustCompile(t, Spec{Expression: `event.data.tags.exists(t, t == "vip")`})
	events := []struct {
		n    *event.Notification
		want bool
	}{
		{testEvent("invoice.paid", `{"amount":150,"customer":{"plan":"pro"},"tags":["vip"]}`), true},
		{testEvent("invoice.paid", `{"amount":50,"customer":{"plan":"pro"},"tags":["no"]}`), false},
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				e := events[(g+i)%len(events)]
				if d := f.Evaluate(e.n); d.Allowed != e.want {
					t.Errorf("Evaluate = %+v, want allowed %v", d, e.want)
					return
				}
				if d := loop.Evaluate(e.n); d.Allowed != e.want {
					t.Errorf("loop Evaluate = %+v, want allowed %v", d, e.want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestPassReason(t *testing.T) {
	cases := map[string]Spec{
		"the filter has no rules, so every event is delivered": {},
		"passed include_types":                                 {IncludeTypes: []string{}},
		"passed exclude_types and expression":                  {ExcludeTypes: []string{"a"}, Expression: "true"},
		"passed include_types, exclude_types and expression":   {IncludeTypes: []string{"*"}, ExcludeTypes: []string{"a"}, Expression: "true"},
	}
	for want, spec := range cases {
		if got := passReason(spec); got != want {
			t.Errorf("passReason(%+v) = %q, want %q", spec, got, want)
		}
	}
}
