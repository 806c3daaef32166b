package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/qorbgo/qorb/statshttp"
)

// endpoint reads one stats endpoint (package statshttp).
type endpoint struct {
	root    string // the handler's root, as given
	pools   string // root + "pools"
	client  *http.Client
	timeout time.Duration // bounds one request
}

// newEndpoint checks the endpoint's root URL: an http or https URL, or a
// bare host:port taken as http. A path names where the handler is mounted
// ("http://host:8080/debug/qorb").
func newEndpoint(root string, timeout time.Duration) (*endpoint, error) {
	if root == "" {
		return nil, errors.New("no endpoint URL given")
	}
	if !strings.Contains(root, "://") {
		root = "http://" + root
	}
	u, err := url.Parse(root)
	if err != nil {
		return nil, fmt.Errorf("endpoint %q: %w", root, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("endpoint %q: want http://host:port[/path] of a qorb stats endpoint", root)
	}
	u.RawQuery, u.Fragment = "", ""
	return &endpoint{
		root:    u.String(),
		pools:   u.JoinPath("pools").String(),
		client:  &http.Client{Timeout: timeout},
		timeout: timeout,
	}, nil
}

// fetch gets a snapshot of every pool. Its errors say what was asked and
// what went wrong, for a person to read.
func (e *endpoint) fetch(ctx context.Context) (statshttp.Pools, error) {
	var ps statshttp.Pools
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.pools, nil)
	if err != nil {
		return ps, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		return ps, err // *url.Error: "Get URL: dial tcp ...: connection refused"
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return ps, fmt.Errorf("GET %s: %w", e.pools, err)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK {
		var se statshttp.Error
		if mt == "application/json" && json.Unmarshal(body, &se) == nil && se.Error != "" {
			return ps, fmt.Errorf("GET %s: %s: %s", e.pools, resp.Status, se.Error)
		}
		return ps, fmt.Errorf("GET %s: %s; not a qorb stats endpoint? (%s)", e.pools, resp.Status, excerpt(body))
	}
	if mt != "application/json" {
		return ps, fmt.Errorf("GET %s: got %q, not JSON: not a qorb stats endpoint (%s)", e.pools, mt, excerpt(body))
	}
	if err := json.Unmarshal(body, &ps); err != nil {
		return ps, fmt.Errorf("GET %s: not a qorb stats answer: %w", e.pools, err)
	}
	if ps.At.IsZero() {
		return ps, fmt.Errorf("GET %s: the answer has no snapshot time: not a qorb stats endpoint (%s)", e.pools, excerpt(body))
	}
	return ps, nil
}

// excerpt returns the start of a body, on one line.
func excerpt(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	if s == "" {
		return "empty body"
	}
	return fmt.Sprintf("body: %q", s)
}
