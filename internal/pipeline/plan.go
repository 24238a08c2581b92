package pipeline

// Plan reports what Process would decide about m before any call to a
// store, Svix or the dead-letter topic, and makes none itself. Process
// starts with it, so the checks (decoding and validation, the type filter,
// resolving the application) are the same in both, in the same order. For an event Process would send it
// returns send true and a Result with only AppID set; otherwise the Result
// Process ends with before any side effect, Invalid (with Err) or Filtered.
// `gwook replay --dry-run` uses it to say what a real run would do.
func (p *Pipeline) Plan(m *Message) (r Result, send bool) {
	if m.Err != nil {
		return Result{Outcome: Invalid, Err: m.Err}, false
	}
	if !p.cfg.Filter.Allows(m.Event.Type) {
		return Result{Outcome: Filtered}, false
	}
	appID, err := p.application(&m.Event)
	if err != nil {
		return Result{Outcome: Invalid, Err: err}, false
	}
	if p.cfg.AppID == "" && p.cfg.DropUnknown && p.cfg.Applications != nil && !p.cfg.Applications(appID) {
		return Result{Outcome: NoApplication, AppID: appID}, false
	}
	return Result{AppID: appID}, true
}
