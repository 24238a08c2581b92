// Package svixserver is a Svix-compatible HTTP server for tests and local
// development; it is not a production component.
//
// It implements, in memory, the endpoints Gwook calls through the official
// Svix Go SDK:
//   - message creation (POST /api/v1/app/{app_id}/msg), with Svix's
//     idempotency-key replay and eventId conflict rules; unlike Svix it
//     accepts messages for an application nobody created, creating one
//     with that uid;
//   - applications: list, create (with get_if_exists), get, update (PUT,
//     which creates a missing one, as in Svix) and delete;
//   - endpoints: create, get, update (PUT, which creates a missing one) and
//     delete, addressed by id or uid; reading and rotating their secrets,
//     with the previous secret kept for the grace period (24 hours by
//     default) as Svix does;
//   - event types: list, create (which unarchives an archived one), get,
//     update (PUT, which creates a missing one), patch and delete (which
//     archives, or with expunge=true forgets);
//   - the health check.
//
// It follows Svix's rules where Gwook depends on them: a taken uid is a
// 409, PUT replaces every field (a body without a uid leaves the
// application or endpoint without one), filterTypes may be absent but not
// empty, and must name event types that exist and are not archived (422,
// "The following event types don't exist: ..."), an event type's name is
// taken once (409), and an endpoint secret must be 24 to 75 bytes. It
// accepts messages of any event type, known or not. Accessors (Messages,
// Application, Endpoint, Endpoints, EventType, Requests) show what it
// holds.
//
// It answers 401 to a wrong token (Options.Token, SetToken) and can be
// scripted to fail or to be slow: Script and ScriptFor queue answers per
// operation, and SetDefault and FailRandomly apply to message creation.
// A validating server checks each request against Svix's own OpenAPI
// document, so a client that drifts from the real API is caught.
//
// In a test:
//
//	srv := svixserver.New(t)
//	u, _ := url.Parse(srv.URL())
//	client, _ := svix.New("token", &svix.SvixOptions{ServerUrl: u})
//	srv.Script(svixserver.Response{Status: 429, RetryAfter: "1"})
//	// ... exercise code that calls client.Message.Create ...
//	msgs := srv.WaitForMessages(t, 1, 5*time.Second)
//	srv.ScriptFor(svixserver.CreateEndpoint, svixserver.Response{Status: 503})
//	// ... exercise code that calls client.Endpoint.Create ...
//	ep, ok := srv.Endpoint("app_uid", "endpoint_uid")
package svixserver
