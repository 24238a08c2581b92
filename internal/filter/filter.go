package filter

import (
	"slices"
	"strconv"
	"strings"

	"github.com/gwook/gwook/internal/event"
)

// Spec is a filter as it is stored: the three fields of the wire contract.
type Spec struct {
	// IncludeTypes lists the event types delivered. Nil delivers every type;
	// a non-nil empty list delivers none.
	IncludeTypes []string
	// ExcludeTypes lists the event types never delivered.
	ExcludeTypes []string
	// Expression is a CEL expression over event; an event is delivered only
	// when it is true. Empty means no expression.
	Expression string
}

// Rule names the rule of a filter that decided an event's fate.
type Rule string

// The rules of a filter, in the order Evaluate applies them.
const (
	// RuleNone: the event passed every rule and is delivered.
	RuleNone Rule = ""
	// RuleIncludeTypes: the event type matches no include_types pattern.
	RuleIncludeTypes Rule = "include_types"
	// RuleExcludeTypes: the event type matches an exclude_types pattern.
	RuleExcludeTypes Rule = "exclude_types"
	// RuleExpression: the expression is false.
	RuleExpression Rule = "expression"
	// RuleExpressionError: the expression failed at run time (a missing
	// key, a result that is not a bool, the cost limit, ...).
	RuleExpressionError Rule = "expression_error"
)

// Decision says whether an event is delivered and which rule decided.
type Decision struct {
	// Allowed reports whether the event is delivered.
	Allowed bool
	// Rule is the rule that stopped the event, or RuleNone when it passed.
	Rule Rule
	// Reason says in a sentence why, e.g. `expression is false`.
	Reason string
	// Err is the run-time error of the expression when Rule is
	// RuleExpressionError, and nil otherwise.
	Err error
}

// Kinds of Problem.Rule.
const (
	// ProblemPattern: a type pattern is malformed.
	ProblemPattern = "pattern"
	// ProblemTooMany: a pattern list is longer than MaxPatterns.
	ProblemTooMany = "too_many"
	// ProblemTooLong: a pattern or the expression is too long.
	ProblemTooLong = "too_long"
	// ProblemSyntax: the expression does not parse, or nests too deeply.
	ProblemSyntax = "syntax"
	// ProblemType: the expression does not type-check: an unknown field of
	// event, a wrong argument, or a result that cannot be a bool.
	ProblemType = "type"
	// ProblemInvalid: the expression type-checks but cannot run, e.g. a
	// malformed regular expression given to matches().
	ProblemInvalid = "invalid"
)

// Problem is one reason a Spec does not compile.
type Problem struct {
	// Field is the offending field: "include_types[2]", "exclude_types",
	// "expression".
	Field string `json:"field"`
	// Rule is the kind of problem: one of the Problem* constants.
	Rule string `json:"rule"`
	// Detail says what is wrong, for a person. For the expression it is
	// CEL's message prefixed with "line:column: ".
	Detail string `json:"detail"`
	// Line and Column locate an expression problem (both from 1); zero for
	// other problems.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
}

// CompileError lists every problem that stops a Spec from compiling.
type CompileError struct {
	Problems []Problem
}

// Error joins the problems into one line per problem.
func (e *CompileError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Field)
		b.WriteString(": ")
		b.WriteString(p.Detail)
	}
	return b.String()
}

// Filter is a compiled Spec. It is immutable and safe for concurrent use.
type Filter struct {
	spec       Spec
	types      Types
	expr       *expression // nil without an expression
	passReason string
	// refusal, when set, stops every event (see Refusing).
	refusal string
}

// Compile checks spec and prepares it for Evaluate. Every problem found is
// listed in the returned *CompileError.
func Compile(spec Spec) (*Filter, error) {
	var problems []Problem
	problems = append(problems, checkPatterns("include_types", spec.IncludeTypes)...)
	problems = append(problems, checkPatterns("exclude_types", spec.ExcludeTypes)...)
	var expr *expression
	if spec.Expression != "" {
		var exprProblems []Problem
		expr, exprProblems = compileExpression(spec.Expression)
		problems = append(problems, exprProblems...)
	}
	if len(problems) > 0 {
		return nil, &CompileError{Problems: problems}
	}
	spec = cloneSpec(spec)
	return &Filter{
		spec:       spec,
		types:      Types{Include: spec.IncludeTypes, Exclude: spec.ExcludeTypes},
		expr:       expr,
		passReason: passReason(spec),
	}, nil
}

// passReason is the Reason of an event that passed every rule of spec.
func passReason(spec Spec) string {
	var rules []string
	if spec.IncludeTypes != nil {
		rules = append(rules, string(RuleIncludeTypes))
	}
	if len(spec.ExcludeTypes) > 0 {
		rules = append(rules, string(RuleExcludeTypes))
	}
	if spec.Expression != "" {
		rules = append(rules, string(RuleExpression))
	}
	switch len(rules) {
	case 0:
		return "the filter has no rules, so every event is delivered"
	case 1:
		return "passed " + rules[0]
	default:
		return "passed " + strings.Join(rules[:len(rules)-1], ", ") + " and " + rules[len(rules)-1]
	}
}

func cloneSpec(spec Spec) Spec {
	spec.IncludeTypes = slices.Clone(spec.IncludeTypes) // keeps nil nil and empty empty
	spec.ExcludeTypes = slices.Clone(spec.ExcludeTypes)
	return spec
}

// Spec returns the Spec the filter was compiled from.
func (f *Filter) Spec() Spec {
	return cloneSpec(f.spec)
}

// Evaluate decides whether n is delivered. It applies include_types, then
// exclude_types, then the expression, and reports the first rule that stops
// the event. A nil Filter delivers every event.
func (f *Filter) Evaluate(n *event.Notification) Decision {
	if f == nil {
		return Decision{Allowed: true, Reason: "no filter, so every event is delivered"}
	}
	if f.refusal != "" {
		return Decision{Rule: RuleInvalidFilter, Reason: f.refusal}
	}
	if rule, reason := f.types.decide(n.Type); rule != RuleNone {
		return Decision{Rule: rule, Reason: reason}
	}
	if f.expr != nil {
		allowed, err := f.expr.eval(n)
		if err != nil {
			return Decision{Rule: RuleExpressionError, Reason: "expression failed: " + err.Error(), Err: err}
		}
		if !allowed {
			return Decision{Rule: RuleExpression, Reason: "expression is false"}
		}
	}
	return Decision{Allowed: true, Reason: f.passReason}
}

// location formats a 1-based line and column as "line:column: ".
func location(line, column int) string {
	return strconv.Itoa(line) + ":" + strconv.Itoa(column) + ": "
}
