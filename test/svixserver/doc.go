// Package svixserver is a Svix-compatible HTTP server for tests and local
// development; it is not a production component.
//
// It implements the endpoints Gwook calls through the official Svix Go SDK:
// message creation (POST /api/v1/app/{app_id}/msg), with Svix's
// idempotency-key replay and eventId conflict rules; listing applications
// (GET /api/v1/app), which Gwook uses to check its token; and the health
// check. It keeps accepted messages in memory, answers 401 to a wrong
// token (Options.Token, SetToken), and can be scripted to fail or to be
// slow (scripts apply to message creation only).
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
package svixserver
