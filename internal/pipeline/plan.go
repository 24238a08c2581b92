package pipeline

import (
	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/eventtype"
	"github.com/gwook/gwook/internal/filter"
)

// RuleGlobalTypes is the rule of a Decision of the global type filter
// (FILTER_INCLUDE_TYPES, FILTER_EXCLUDE_TYPES).
const RuleGlobalTypes filter.Rule = "global_types"

// RuleArchivedType is the rule of a Decision that drops an event because
// its type is archived in the catalogue of event types.
const RuleArchivedType filter.Rule = "archived_type"

// Plan reports what Process would decide about m before any call to a
// store, Svix or the dead-letter topic, and makes none itself. Process
// starts with it, so the checks (decoding and validation, the global type
// filter, resolving the application, the application's filter) are the
// same in both, in the same order (the data schema of the event's type
// comes right after decoding, and an archived type before the global type
// filter). For an event Process would send it
// returns send true and a Result with only AppID set; otherwise the Result
// Process ends with before any side effect: Invalid (with Err), Filtered
// (with Filter) or NoApplication. `gwook replay --dry-run` uses it to say
// what a real run would do.
func (p *Pipeline) Plan(m *Message) (r Result, send bool) {
	if m.Err != nil {
		return Result{Outcome: Invalid, Err: m.Err}, false
	}
	if err := p.checkData(&m.Event); err != nil {
		return Result{Outcome: Invalid, Err: err}, false
	}
	if d := p.globalDecision(m.Event.Type); !d.Allowed {
		// Counted under the application when the event has a known one.
		appID, err := p.application(&m.Event)
		if err != nil || !p.known(appID) {
			appID = ""
		}
		return Result{Outcome: Filtered, AppID: appID, Filter: d}, false
	}
	appID, err := p.application(&m.Event)
	if err != nil {
		return Result{Outcome: Invalid, Err: err}, false
	}
	if !p.known(appID) {
		return Result{Outcome: NoApplication, AppID: appID}, false
	}
	if d := p.appDecision(appID, &m.Event); !d.Allowed {
		return Result{Outcome: Filtered, AppID: appID, Filter: d}, false
	}
	return Result{AppID: appID}, true
}

// known reports whether events for appID go on: always, unless
// UNKNOWN_APPLICATION=drop and Gwook has no such application.
func (p *Pipeline) known(appID string) bool {
	return p.cfg.AppID != "" || !p.cfg.DropUnknown || p.cfg.Applications == nil || p.cfg.Applications(appID)
}

// Decide returns what the filters make of n for the application appID, as
// Process decides it: an archived type, the global type filter, then the
// application's filter. The application's filter is the one in memory.
func (p *Pipeline) Decide(appID string, n *event.Notification) filter.Decision {
	if d := p.globalDecision(n.Type); !d.Allowed {
		return d
	}
	return p.appDecision(appID, n)
}

// DecideWith is Decide with f in place of the application's filter.
func (p *Pipeline) DecideWith(f *filter.Filter, n *event.Notification) filter.Decision {
	if d := p.globalDecision(n.Type); !d.Allowed {
		return d
	}
	return f.Evaluate(n)
}

// eventType is the catalogued type of name, nil when there is none.
func (p *Pipeline) eventType(name string) *eventtype.Type {
	if p.cfg.EventTypes == nil {
		return nil
	}
	return p.cfg.EventTypes(name)
}

// checkData checks n's data against the schema of its type, and returns an
// *event.InvalidError listing every violation, or nil. A type not in the
// catalogue, without a schema, or archived (its events are dropped anyway)
// is not checked.
func (p *Pipeline) checkData(n *event.Notification) error {
	et := p.eventType(n.Type)
	switch {
	case et == nil || et.Archived:
		return nil
	case et.Err != nil:
		return &event.InvalidError{Reason: "the schema of event type \"" + n.Type + "\" does not compile", Fields: []event.FieldError{{
			Field: "data", Rule: "schema", Detail: "the catalogue's schema of this type does not compile, so no data can be checked against it: " + et.Err.Error(),
		}}}
	case et.Schema == nil:
		return nil
	}
	if violations := et.Schema.Validate(n.Data); violations != nil {
		return &event.InvalidError{Reason: "data does not match the schema of event type \"" + n.Type + "\"", Fields: violations}
	}
	return nil
}

// globalDecision drops an event of an archived type, then applies the
// global type filter.
func (p *Pipeline) globalDecision(eventType string) filter.Decision {
	if et := p.eventType(eventType); et != nil && et.Archived {
		return filter.Decision{Rule: RuleArchivedType, Reason: "event type \"" + eventType + "\" is archived"}
	}
	if p.cfg.Filter.Allows(eventType) {
		return filter.Decision{Allowed: true}
	}
	return filter.Decision{Rule: RuleGlobalTypes,
		Reason: "event type \"" + eventType + "\" is not forwarded by FILTER_INCLUDE_TYPES or FILTER_EXCLUDE_TYPES"}
}

func (p *Pipeline) appDecision(appID string, n *event.Notification) filter.Decision {
	if p.cfg.AppFilter != nil {
		if f := p.cfg.AppFilter(appID); f != nil {
			return f.Evaluate(n)
		}
	}
	return filter.Decision{Allowed: true, Reason: "the application has no filter"}
}
