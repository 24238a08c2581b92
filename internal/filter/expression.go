package filter

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"

	"github.com/gwook/gwook/internal/event"
)

const (
	// MaxExpressionLength is the longest expression, in bytes.
	MaxExpressionLength = 4096

	// CostLimit bounds the work of one evaluation, in CEL cost units (about
	// one unit per variable access, field selection, comparison or loop step;
	// string functions count one unit per 10 characters). Past it the
	// evaluation stops with an error, so the event is not delivered
	// (RuleExpressionError). A typical filter costs 3 to 20 units; a loop
	// costs 2 to 5 units per element plus its body, so loops over a few
	// thousand elements fit.
	//
	// The limit is this low because CEL's cost tracking (cel-go v0.31) takes
	// time quadratic in the number of loop steps: at 10,000 units the most
	// expensive expressions measured stop within 10 ms (plus the decoding of
	// event.data, about 8 ms per MiB), where 100,000 units took up to 80 ms.
	CostLimit = 10_000

	// maxNestingDepth bounds how deeply an expression may nest: 32 nested
	// parentheses, calls, chained operators such as a + b + c, or field
	// selections. It keeps parsing and checking of pathological input quick.
	maxNestingDepth = 32

	// maxExpressionNodes bounds the nodes of the parsed expression,
	// including those that macros such as all() expand into.
	maxExpressionNodes = 4096

	// maxErrorsReported bounds the problems reported for one expression.
	maxErrorsReported = 10
)

// Untracked runs: when CEL's static cost estimate proves that an expression
// stays within CostLimit on events up to some size, it runs on such events
// without cost tracking. Lazy reads: an expression without loops reads
// event.data lazily on events up to the size where its reads stay within
// lazyScanBudget. For the typical filter (BenchmarkEvaluate/expression_data)
// on this machine: untracked and lazy 0.4 µs and 2 allocations; tracked and
// lazy 1.0 µs and 11; untracked, data decoded whole 2.2 µs and 56; tracked,
// decoded 2.9 µs and 65.
const (
	// maxProvenSize is the largest event size a proof is tried for: the
	// default MAX_EVENT_BYTES.
	maxProvenSize = 1 << 20
	// minProvenSize is the smallest event size worth a proof.
	minProvenSize = 256
	// lazyScanBudget bounds the bytes that lazy reads of event.data may scan
	// or decode in one evaluation (a few milliseconds of work).
	lazyScanBudget = 4 << 20
)

// eventTypeName is the CEL type of the variable event.
const eventTypeName = "gwook.filter.Event"

var eventType = types.NewObjectType(eventTypeName)

// eventFields are the fields of event, by CEL name.
var eventFields = map[string]*types.FieldType{
	"id":      stringField(func(n *event.Notification) string { return n.ID }),
	"type":    stringField(func(n *event.Notification) string { return n.Type }),
	"source":  stringField(func(n *event.Notification) string { return n.Source }),
	"project": stringField(func(n *event.Notification) string { return n.Project }),
	"user_id": stringField(func(n *event.Notification) string { return n.UserID }),
	"time":    stringField(func(n *event.Notification) string { return n.Time }),
	"data": {
		Type:  types.NewMapType(types.StringType, types.DynType),
		IsSet: func(target any) bool { return len(target.(*eventValue).n.Data) > 0 },
		GetFrom: func(target any) (any, error) {
			return target.(*eventValue).data()
		},
	},
}

var eventFieldNames = []string{"id", "type", "source", "project", "user_id", "time", "data"}

func stringField(get func(*event.Notification) string) *types.FieldType {
	return &types.FieldType{
		Type:  types.StringType,
		IsSet: func(target any) bool { return get(target.(*eventValue).n) != "" },
		GetFrom: func(target any) (any, error) {
			return types.String(get(target.(*eventValue).n)), nil
		},
	}
}

// eventProvider adds the type of event to CEL's standard types.
type eventProvider struct {
	types.Provider
}

func (p eventProvider) FindStructType(name string) (*types.Type, bool) {
	if name == eventTypeName {
		return types.NewTypeTypeWithParam(eventType), true
	}
	return p.Provider.FindStructType(name)
}

func (p eventProvider) FindStructFieldNames(name string) ([]string, bool) {
	if name == eventTypeName {
		return eventFieldNames, true
	}
	return p.Provider.FindStructFieldNames(name)
}

func (p eventProvider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if name == eventTypeName {
		ft, ok := eventFields[field]
		return ft, ok
	}
	return p.Provider.FindStructFieldType(name, field)
}

func (p eventProvider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if name == eventTypeName {
		return types.NewErr("an event cannot be created in an expression")
	}
	return p.Provider.NewValue(name, fields)
}

// env is the CEL environment every expression is compiled in: the standard
// library and the variable event.
var env = sync.OnceValue(func() *cel.Env {
	registry, err := types.NewRegistry()
	if err != nil {
		panic(err)
	}
	e, err := cel.NewEnv(
		cel.CustomTypeProvider(eventProvider{Provider: registry}),
		cel.Variable("event", eventType),
		cel.CrossTypeNumericComparisons(true),
		cel.ParserRecursionLimit(maxNestingDepth),
		cel.ParserExpressionSizeLimit(MaxExpressionLength),
		cel.ExpressionNodeLimit(maxExpressionNodes),
	)
	if err != nil {
		panic(err)
	}
	return e
})

// expression is a compiled CEL expression.
type expression struct {
	// tracked runs with cel.CostLimit.
	tracked cel.Program
	// untracked runs without cost tracking, on events of at most provenSize
	// bytes. Nil when no proof holds for any size.
	untracked  cel.Program
	provenSize int
	// lazyMaxSize is the largest event on which event.data is read lazily
	// rather than decoded whole; 0 for expressions with loops.
	lazyMaxSize int
}

func compileExpression(src string) (*expression, []Problem) {
	if len(src) > MaxExpressionLength {
		return nil, []Problem{{
			Field:  "expression",
			Rule:   ProblemTooLong,
			Detail: "an expression is at most " + strconv.Itoa(MaxExpressionLength) + " bytes, got " + strconv.Itoa(len(src)),
		}}
	}
	e := env()
	parsed, iss := e.Parse(src)
	if iss.Err() != nil {
		return nil, issueProblems(iss, ProblemSyntax)
	}
	checked, iss := e.Check(parsed)
	if iss.Err() != nil {
		return nil, issueProblems(iss, ProblemType)
	}
	tree := checked.NativeRep()
	switch out := checked.OutputType(); out.Kind() {
	case types.BoolKind, types.DynKind, types.AnyKind, types.TypeParamKind:
	default:
		return nil, []Problem{problemAtExpr(tree, tree.Expr(), ProblemType,
			"the expression must be a bool, but it is "+out.String())}
	}
	shape, problems := inspect(tree)
	if len(problems) > 0 {
		return nil, problems
	}
	tracked, err := e.Program(checked, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(CostLimit))
	if err != nil { // e.g. a malformed regular expression
		return nil, []Problem{{Field: "expression", Rule: ProblemInvalid, Detail: err.Error()}}
	}
	x := &expression{tracked: tracked, lazyMaxSize: lazyMaxSize(shape)}
	if size := provenSize(e, checked); size > 0 {
		untracked, err := e.Program(checked, cel.EvalOptions(cel.OptOptimize))
		if err != nil {
			return nil, []Problem{{Field: "expression", Rule: ProblemInvalid, Detail: err.Error()}}
		}
		x.untracked, x.provenSize = untracked, size
	}
	return x, nil
}

func issueProblems(iss *cel.Issues, rule string) []Problem {
	var problems []Problem
	for _, e := range iss.Errors() {
		if len(problems) == maxErrorsReported {
			problems = append(problems, Problem{
				Field:  "expression",
				Rule:   rule,
				Detail: strconv.Itoa(len(iss.Errors())-maxErrorsReported) + " more errors",
			})
			break
		}
		problems = append(problems, problemAt(rule, e.Location.Line(), e.Location.Column()+1, e.Message))
	}
	return problems
}

// problemAt returns an expression problem at a 1-based line and column; a
// line below 1 means CEL gave no position.
func problemAt(rule string, line, column int, message string) Problem {
	if line < 1 {
		return Problem{Field: "expression", Rule: rule, Detail: message}
	}
	return Problem{
		Field:  "expression",
		Rule:   rule,
		Detail: location(line, column) + message,
		Line:   line,
		Column: column,
	}
}

func problemAtExpr(tree *celast.AST, x celast.Expr, rule, message string) Problem {
	loc := tree.SourceInfo().GetStartLocation(x.ID())
	return problemAt(rule, loc.Line(), loc.Column()+1, message)
}

// shape is what inspect learns of a checked expression.
type shape struct {
	// loops: the expression has comprehensions (all, exists, map, ...).
	loops bool
	// reads counts the nodes that may read event.data: selections from maps
	// and calls with an argument that may be a map or a list.
	reads int
}

// inspect measures a checked expression and refuses what the checker lets
// through but Gwook does not: creating an event.
func inspect(tree *celast.AST) (shape, []Problem) {
	var s shape
	var problems []Problem
	celast.PostOrderVisit(tree.Expr(), celast.NewExprVisitor(func(x celast.Expr) {
		switch x.Kind() {
		case celast.ComprehensionKind:
			s.loops = true
		case celast.StructKind:
			if x.AsStruct().TypeName() == eventTypeName {
				problems = append(problems, problemAtExpr(tree, x, ProblemType, "an event cannot be created in an expression"))
			}
		case celast.SelectKind:
			if mayBeData(tree.GetType(x.AsSelect().Operand().ID())) {
				s.reads++
			}
		case celast.CallKind:
			call := x.AsCall()
			operands := call.Args()
			if call.IsMemberFunction() {
				operands = append([]celast.Expr{call.Target()}, operands...)
			}
			for _, o := range operands {
				if mayBeData(tree.GetType(o.ID())) {
					s.reads++
					break
				}
			}
		}
	}))
	return s, problems
}

// mayBeData reports whether a value of type t may be read from event.data
// lazily, scanning or decoding it.
func mayBeData(t *types.Type) bool {
	switch t.Kind() {
	case types.MapKind, types.ListKind, types.DynKind, types.AnyKind, types.TypeParamKind:
		return true
	}
	return false
}

// lazyMaxSize returns the largest event on which an expression of shape s
// reads event.data lazily, or 0 if it never does.
//
// Without loops each node runs at most once, and a node that reads
// event.data scans at most the event, or decodes at most two values of it
// (both sides of ==): at most twice the event's size.
func lazyMaxSize(s shape) int {
	switch {
	case s.loops:
		return 0
	case s.reads == 0:
		return maxProvenSize
	}
	return min(maxProvenSize, lazyScanBudget/(2*s.reads))
}

// provenSize returns the largest event size (a power of two) on which the
// checked expression provably stays within CostLimit, or 0. The proof is
// CEL's static cost estimate with every string, list and map no larger than
// the event.
func provenSize(e *cel.Env, checked *cel.Ast) int {
	for size := maxProvenSize; size >= minProvenSize; size /= 2 {
		est, err := e.EstimateCost(checked, sizeBound(size))
		if err == nil && est.Max <= CostLimit {
			return size
		}
	}
	return 0
}

// sizeBound is a cost estimator that takes every value whose size CEL cannot
// know to be at most that many elements, characters or bytes.
type sizeBound uint64

func (b sizeBound) EstimateSize(node checker.AstNode) *checker.SizeEstimate {
	switch node.Type().Kind() {
	case types.BoolKind, types.IntKind, types.UintKind, types.DoubleKind, types.TimestampKind, types.DurationKind:
		return nil // fixed size, known to CEL
	}
	return &checker.SizeEstimate{Min: 0, Max: uint64(b)}
}

func (sizeBound) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// eventSize bounds the size of every string, list and map an expression can
// read from n.
func eventSize(n *event.Notification) int {
	return len(n.ID) + len(n.Type) + len(n.Source) + len(n.Project) + len(n.UserID) + len(n.Time) + len(n.Data)
}

// eval runs the expression on n.
func (x *expression) eval(n *event.Notification) (bool, error) {
	size := eventSize(n)
	lazy := size <= x.lazyMaxSize
	if x.untracked != nil && size <= x.provenSize {
		return run(x.untracked, n, lazy)
	}
	return run(x.tracked, n, lazy)
}

// run evaluates program on n, reading event.data lazily or decoding it whole.
func run(program cel.Program, n *event.Notification, lazy bool) (bool, error) {
	st := statePool.Get().(*evalState)
	st.event = eventValue{n: n, lazy: lazy}
	out, _, err := program.Eval(st)
	allowed := false
	if err == nil {
		if b, ok := out.(types.Bool); ok {
			allowed = bool(b)
		} else {
			err = fmt.Errorf("the result is %s, not bool", typeName(out))
		}
	}
	st.event = eventValue{}
	statePool.Put(st)
	return allowed, err
}

func typeName(v ref.Val) string {
	if v == nil {
		return "nothing"
	}
	return v.Type().TypeName()
}

// evalState is the Activation of one evaluation; it is pooled so that an
// evaluation allocates nothing for it (a map[string]any activation with a
// fresh eventValue measured 1.0 µs and 5 allocations against 0.4 µs and 2).
type evalState struct {
	event eventValue
}

var statePool = sync.Pool{New: func() any { return new(evalState) }}

// ResolveName implements interpreter.Activation.
func (s *evalState) ResolveName(name string) (any, bool) {
	if name == "event" {
		return &s.event, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (s *evalState) Parent() interpreter.Activation { return nil }

// eventValue is the CEL value of the variable event: its fields are read from
// the Notification when the expression selects them.
type eventValue struct {
	n    *event.Notification
	lazy bool // read event.data lazily rather than decode it whole

	root    jsonObject // event.data, read lazily
	decoded ref.Val    // event.data, decoded whole
	dataErr error
	dataSet bool
}

var errDataNotObject = errors.New("event data is not a JSON object")

// data returns event.data, lazily readable or decoded whole.
func (v *eventValue) data() (ref.Val, error) {
	if !v.dataSet {
		v.dataSet = true
		raw := v.n.Data
		if !isObject(raw) {
			v.dataErr = errDataNotObject
		} else if v.lazy {
			v.root = jsonObject{raw: raw}
		} else {
			v.decoded, v.dataErr = decodeJSON(raw)
		}
	}
	switch {
	case v.dataErr != nil:
		return nil, v.dataErr
	case v.lazy:
		return &v.root, nil
	default:
		return v.decoded, nil
	}
}

var notificationType = reflect.TypeFor[*event.Notification]()

// ConvertToNative implements ref.Val.
func (v *eventValue) ConvertToNative(typeDesc reflect.Type) (any, error) {
	if typeDesc == notificationType {
		return v.n, nil
	}
	return nil, fmt.Errorf("event cannot be converted to %v", typeDesc)
}

// ConvertToType implements ref.Val.
func (v *eventValue) ConvertToType(typeVal ref.Type) ref.Val {
	if typeVal == types.TypeType {
		return eventType
	}
	return types.NewErr("event cannot be converted to %s", typeVal.TypeName())
}

// Equal implements ref.Val: event equals only itself.
func (v *eventValue) Equal(other ref.Val) ref.Val {
	return types.Bool(other == ref.Val(v))
}

// Type implements ref.Val.
func (v *eventValue) Type() ref.Type { return eventType }

// Value implements ref.Val. Field getters receive it.
func (v *eventValue) Value() any { return v }
