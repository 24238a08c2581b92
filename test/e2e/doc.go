// Package e2e holds end-to-end tests: a running Gwook receives real pushes
// from the Pub/Sub emulator and forwards them to the Svix-compatible test
// server. Run them with `make test`, which starts the emulator.
package e2e
