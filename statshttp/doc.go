// Package statshttp serves the Stats of qorb pools over HTTP: as JSON, once,
// and as a live stream of server-sent events. It uses the standard library
// only.
//
// A [Handler] serves any number of named pools, of any connection types:
// anything with a Stats() pool.Stats method is a [Source].
//
//	h := statshttp.New(statshttp.Config{})
//	defer h.Close()
//	if err := h.Add("db", dbPool); err != nil { ... }
//	if err := h.Add("cache", cachePool); err != nil { ... }
//	mux.Handle("/debug/qorb/", http.StripPrefix("/debug/qorb", h))
//
// Routes (relative to where the handler is mounted):
//
//	GET /               Index: each pool's name, state and path
//	GET /pools          Pools: a snapshot of every pool
//	GET /pools/{name}   Pool: a snapshot of one pool; 404 for an unknown name
//
// Add ?stream=1 (or send Accept: text/event-stream) to any route to get a
// stream instead: one event at once, then one every Config.Interval (one
// second by default; ?interval=250ms chooses, down to Config.MinInterval).
// Each event is
//
//	id: 1
//	event: stats
//	data: {...the same JSON as the route's answer, on one line...}
//
// A stream ends when the client goes away, when [Handler.Close] is
// called, after Config.MaxStream (an hour by default), or when a write to
// a client that does not read takes longer than Config.WriteTimeout; it
// ends with an "error" event when its pool is removed. Nothing is left
// running after it ends.
//
// The JSON view types ([Pool], [Backend], [Histogram], ...) mirror
// pool.Stats field by field, with durations as strings a person reads
// ("1.5s", time.Duration.String, see [Duration]) and each snapshot stamped
// with the time it was taken ([Pool].At), so that a client computes rates
// from two snapshots: (claims₂ − claims₁) / (At₂ − At₁). The types decode
// the JSON they encode, so a Go client reads the endpoint with
// encoding/json and these types. docs/statshttp.md describes every field.
package statshttp
