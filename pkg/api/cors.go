package api

import (
	"net/http"
	"slices"

	"github.com/rs/cors"
)

// CORS lets pages of the allowed origins read SSE streams and API
// answers: rs/cors answers preflights (allowing Last-Event-ID, so that a
// cross-origin EventSource can resume, with Authorization and
// Content-Type) and sets the headers of actual requests on the
// ResponseWriter, where a hijacked SSE stream copies them from (see
// wire.SSE). With no origins it adds nothing: same origin only.
// "*" allows any origin but without credentials, since reflecting every
// origin with credentials would let any site act as the visitor.
func CORS(h http.Handler, origins []string) http.Handler {
	if len(origins) == 0 {
		return h
	}
	any := slices.Contains(origins, "*")
	c := cors.New(cors.Options{
		AllowedOrigins:   origins,
		AllowedMethods:   []string{http.MethodGet, http.MethodPost},
		AllowedHeaders:   []string{"Last-Event-ID", "Authorization", "Content-Type"},
		AllowCredentials: !any,
		MaxAge:           600,
	})
	return c.Handler(h)
}
