package filter

// RuleInvalidFilter: the application's stored filter does not compile, so
// no event of the application is delivered.
const RuleInvalidFilter Rule = "invalid_filter"

// Refusing returns a Filter that delivers no event, each stopped by
// RuleInvalidFilter with reason: what stands in for a stored filter that no
// longer compiles, since a filter exists to keep events from leaving.
func Refusing(reason string) *Filter {
	return &Filter{refusal: reason}
}
