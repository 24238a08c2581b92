// Package filter decides which events of a customer application leave Gwook.
//
// Each application has one filter, stored as a Spec of three rules and
// applied in this order by Filter.Evaluate; the first rule that stops an
// event is the Rule of the Decision, which the test endpoint shows:
//
//   - include_types: the event types delivered. A pattern is an exact type
//     ("user.deleted"), a prefix followed by "*" ("invoice.*" matches
//     "invoice.paid", not "invoice"), or "*", which matches every type. Nil
//     delivers every type; an empty list delivers none.
//   - exclude_types: the event types never delivered, with the same patterns.
//   - expression: a CEL expression (https://cel.dev) over the variable event;
//     the event is delivered only when it is true.
//
// Types holds the two type rules alone; GlobalTypes builds the Types of
// Gwook's own FILTER_INCLUDE_TYPES and FILTER_EXCLUDE_TYPES settings.
//
// # Expressions
//
// event has the fields id, type, source, project, user_id and time (strings)
// and data, the event's JSON object (a map from string to any value).
// Naming any other field of event is a compile error, as is an expression
// whose result cannot be a bool; a result known only at run time (e.g.
// event.data.flag) must turn out a bool. CEL's standard library is
// available (size, contains, startsWith, matches, in, has, timestamp(), all,
// exists, map, filter, ...), with comparisons across int, uint and double.
//
// JSON values in event.data are CEL values: objects are maps, arrays lists,
// strings strings, true and false bools, null is null, and every number is a
// double, as in CEL's own JSON mapping. Comparisons mix doubles and ints
// freely, so event.data.amount > 100 holds for 150 and for 150.5, and
// event.data.count == 3 for 3; arithmetic does not (CEL has no double + int),
// so write event.data.count + 1.0, or int(event.data.count) + 1.
//
// An expression that fails at run time, e.g. on a key missing from
// event.data ("no such key: plan"), or with a result that is not a bool,
// does not deliver the event: the Decision has Rule RuleExpressionError and
// the error in Err, for the caller to count. has(event.data.plan) tests for
// a key without failing.
//
// # Cost
//
// An evaluation may cost at most CostLimit (10,000) CEL cost units, about
// one per field access, comparison or loop step; past it the evaluation
// stops with an error (RuleExpressionError). That stops any expression,
// e.g. nested loops over a large array of event.data, within about 10 ms,
// plus the decoding of event.data (about 8 ms per MiB). Compile also bounds
// the expression: MaxExpressionLength bytes, 32 levels of nesting, and 4,096
// nodes, so that pathological input fails quickly.
//
// Cost tracking itself is not free, so an expression whose worst-case cost
// CEL's static estimate proves within the limit on events up to some size
// runs untracked on such events. An expression without loops reads
// event.data lazily: it finds the keys and indexes it names in the raw JSON
// and decodes nothing else, on events up to a size that keeps this scanning
// within a few milliseconds. Otherwise event.data is decoded whole, once per
// evaluation. The typical filter (include_types, exclude_types and an
// expression comparing one key of event.data and one field of event)
// evaluates in under 0.5 µs with 2 allocations.
package filter
