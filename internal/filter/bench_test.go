package filter

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gwook/gwook/internal/event"
)

func benchEvent() *event.Notification {
	return &event.Notification{
		ID:      "evt_2Nf8s0m3Zq",
		Type:    "invoice.paid",
		Source:  "billing",
		Project: "acme-prod",
		UserID:  "usr_8842",
		Time:    "2024-05-01T12:00:00Z",
		Data: json.RawMessage(`{"invoice_id":"inv_123","amount":150,"currency":"EUR",` +
			`"customer":{"id":"cus_9","plan":"pro","tags":["vip","eu"]},"lines":[{"sku":"a","qty":1},{"sku":"b","qty":2}]}`),
	}
}

// BenchmarkEvaluate measures one Evaluate of typical filters on a typical
// event. It reports ns/op and allocs/op; run with -benchmem is implied.
func BenchmarkEvaluate(b *testing.B) {
	cases := []struct {
		name string
		spec Spec
	}{
		{"no_filter", Spec{}},
		{"types_only", Spec{IncludeTypes: []string{"invoice.*"}, ExcludeTypes: []string{"invoice.draft"}}},
		{"expression_top_level", Spec{
			IncludeTypes: []string{"invoice.*"},
			ExcludeTypes: []string{"invoice.draft"},
			Expression:   `event.source == "billing" && event.project.startsWith("acme-")`,
		}},
		{"expression_data", Spec{
			IncludeTypes: []string{"invoice.*"},
			ExcludeTypes: []string{"invoice.draft"},
			Expression:   `event.data.amount > 100 && event.source == "billing"`,
		}},
		{"expression_nested_data", Spec{
			Expression: `event.data.customer.plan == "pro" && "vip" in event.data.customer.tags`,
		}},
		{"expression_loop", Spec{
			Expression: `event.data.lines.exists(l, l.qty > 1)`,
		}},
	}
	n := benchEvent()
	for _, c := range cases {
		f, err := Compile(c.spec)
		if err != nil {
			b.Fatalf("%s: %v", c.name, err)
		}
		if d := f.Evaluate(n); !d.Allowed {
			b.Fatalf("%s: not allowed: %+v", c.name, d)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f.Evaluate(n)
			}
		})
	}
}

// BenchmarkEvaluateLargeEvent measures filters on an event of almost 1 MiB
// (the default MAX_EVENT_BYTES): the typical filter still reads event.data
// lazily and untracked; nested loops decode it whole and run into the cost
// limit.
func BenchmarkEvaluateLargeEvent(b *testing.B) {
	items := make([]map[string]any, 10000)
	for i := range items {
		items[i] = map[string]any{"sku": "sku-000000" + string(rune('a'+i%26)), "qty": i, "price": 19.99}
	}
	data, err := json.Marshal(map[string]any{"amount": 150, "items": items, "note": strings.Repeat("lorem ipsum ", 35<<10)})
	if err != nil {
		b.Fatal(err)
	}
	n := benchEvent()
	n.Data = data
	b.Logf("event data: %d bytes", len(n.Data))
	for _, c := range []struct{ name, expr string }{
		{"expression_data", `event.data.amount > 100 && event.source == "billing"`},
		{"loop_to_the_cost_limit", `event.data.items.all(x, event.data.items.all(y, true))`},
	} {
		f, err := Compile(Spec{Expression: c.expr})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f.Evaluate(n)
			}
		})
	}
}

// BenchmarkCompile measures Compile of a typical filter and of a long one.
func BenchmarkCompile(b *testing.B) {
	long := strings.Repeat(`event.data.customer.plan == "pro" || `, 100) + "false"
	for _, c := range []struct{ name, expr string }{
		{"typical", `event.data.amount > 100 && event.source == "billing"`},
		{"loop", `event.data.lines.exists(l, l.qty > 1 && l.sku.startsWith("a"))`},
		{"long", long[:min(len(long), MaxExpressionLength)]},
	} {
		spec := Spec{IncludeTypes: []string{"invoice.*"}, ExcludeTypes: []string{"invoice.draft"}, Expression: c.expr}
		if _, err := Compile(spec); err != nil {
			b.Fatalf("%s: %v", c.name, err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Compile(spec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
