package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/gwook/gwook/internal/event"
)

// Layer says which side failed.
type Layer string

// The layers a problem can come from.
const (
	// LayerGwook is Gwook itself, its stores and, under direct delivery,
	// its delivery queue in its database.
	LayerGwook Layer = "gwook"
	// LayerSvix is Svix, under the Svix backend.
	LayerSvix Layer = "svix"
)

// Problem is an RFC 9457 problem details body, with Gwook's extensions.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`

	Layer        Layer              `json:"layer"`
	Outcome      string             `json:"outcome,omitempty"`
	EventID      string             `json:"event_id,omitempty"`
	SvixStatus   int                `json:"svix_status,omitempty"`
	Attempts     int                `json:"attempts,omitempty"`
	DeadLettered bool               `json:"dead_lettered"`
	Errors       []event.FieldError `json:"errors,omitempty"`
	RequestID    string             `json:"request_id,omitempty"`
}

// problemTypeBase prefixes each problem's type; the suffix is the outcome or
// the error kind, so clients can switch on it.
const problemTypeBase = "urn:gwook:problem:"

// Values of the headers every answer carries, shared by all answers instead
// of allocated for each; net/http only reads them.
var (
	jsonContentType    = []string{"application/json"}
	problemContentType = []string{"application/problem+json"}
	noSniff            = []string{"nosniff"}
)

func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	p.RequestID = requestIDFrom(r.Context())
	h := w.Header()
	h["Content-Type"], h["X-Content-Type-Options"] = problemContentType, noSniff
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONHeader(w, status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeJSONBody answers status with body, JSON already encoded.
func writeJSONBody(w http.ResponseWriter, status int, body []byte) {
	writeJSONHeader(w, status)
	_, _ = w.Write(body)
}

func writeJSONHeader(w http.ResponseWriter, status int) {
	h := w.Header()
	h["Content-Type"], h["X-Content-Type-Options"] = jsonContentType, noSniff
	w.WriteHeader(status)
}
