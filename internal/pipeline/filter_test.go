package pipeline

import "testing"

func TestTypeFilter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		filter TypeFilter
		allow  []string
		deny   []string
	}{
		{"no patterns forwards everything", TypeFilter{}, []string{"user.signed_up", "internal.audit"}, nil},
		{"exact exclude", TypeFilter{Exclude: []string{"user.deleted"}}, []string{"user.deleted.v2", "user.signed_up"}, []string{"user.deleted"}},
		{"prefix exclude", TypeFilter{Exclude: []string{"internal.*"}}, []string{"internals", "user.internal.x"}, []string{"internal.audit", "internal."}},
		{"include only", TypeFilter{Include: []string{"billing.*", "user.signed_up"}}, []string{"billing.invoice.paid", "user.signed_up"}, []string{"user.deleted", "billingx"}},
		{"exclude narrows include", TypeFilter{Include: []string{"billing.*"}, Exclude: []string{"billing.internal.*"}},
			[]string{"billing.invoice.paid"}, []string{"billing.internal.sync", "user.signed_up"}},
		{"a lone star matches all", TypeFilter{Exclude: []string{"*"}}, nil, []string{"anything"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, typ := range tc.allow {
				if !tc.filter.Allows(typ) {
					t.Errorf("%q dropped", typ)
				}
			}
			for _, typ := range tc.deny {
				if tc.filter.Allows(typ) {
					t.Errorf("%q forwarded", typ)
				}
			}
		})
	}
}
