package pg

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qorbgo/qorb/pool"
)

// Open returns a pool over the hosts of connString, pgxpool.New's
// counterpart: for example
//
//	p, err := pg.Open("postgres://app@db.example.com:5432/app?pool_max_conns=8")
//
// Each host of the string is a backend, a name being looked up (again
// every HostRequery) and giving one backend per address; a list of hosts
// in libpq's multi-host syntax ("postgres://a:5432,b:5433/app" or
// "host=a,b port=5432,5433") gives several backends, which share the load
// (libpq and pgx try them in turn instead: see docs/pg.md).
//
// The policy is pg's defaults (see [New]), with these pgxpool settings of
// the connection string, which are taken out of it before pgx sees it:
//
//	pool_max_conns                 Policy.MaxSlots (and MaxSlotsPerBackend)
//	pool_min_conns                 Policy.MinSlots
//	pool_min_idle_conns            Policy.SparesWanted (0 keeps pg's default, 1)
//	pool_max_conn_lifetime         Policy.MaxConnLifetime
//	pool_max_conn_lifetime_jitter  Policy.MaxConnLifetimeJitter
//	pool_max_conn_idle_time        Policy.MaxConnIdleTime
//	pool_health_check_period       Policy.HealthInterval
//
// Any other pool_ setting is an error. For a resolver (DNS SRV records),
// other Config fields or a whole policy, use [New]; Open(s, opts...) is
// New(nil, Config{ConnString: s}, the policy above, opts...). Like New it
// does no I/O: the pool connects in the background.
func Open(connString string, opts ...pool.Option) (*Pool, error) {
	cc, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	p, err := poolSettings(cc)
	if err != nil {
		return nil, err
	}
	return New(nil, Config{ConnConfig: cc}, p, opts...)
}

// poolSettings takes pgxpool's pool_ settings out of cc's runtime
// parameters and returns the policy they give.
func poolSettings(cc *pgx.ConnConfig) (pool.Policy, error) {
	var p pool.Policy
	var keys []string
	for k := range cc.RuntimeParams {
		if strings.HasPrefix(k, "pool_") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	count := func(k, v string, min int) (int, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n < min {
			return 0, fmt.Errorf("%w: %s=%q: want a whole number of at least %d", ErrConfig, k, v, min)
		}
		return n, nil
	}
	duration := func(k, v string) (time.Duration, error) {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("%w: %s=%q: want a duration such as 30s or 1h", ErrConfig, k, v)
		}
		return d, nil
	}
	for _, k := range keys {
		v := cc.RuntimeParams[k]
		var err error
		switch k {
		case "pool_max_conns":
			p.MaxSlots, err = count(k, v, 1)
			p.MaxSlotsPerBackend = p.MaxSlots
		case "pool_min_conns":
			p.MinSlots, err = count(k, v, 0)
		case "pool_min_idle_conns":
			p.SparesWanted, err = count(k, v, 0)
		case "pool_max_conn_lifetime":
			p.MaxConnLifetime, err = duration(k, v)
		case "pool_max_conn_lifetime_jitter":
			p.MaxConnLifetimeJitter, err = duration(k, v)
		case "pool_max_conn_idle_time":
			p.MaxConnIdleTime, err = duration(k, v)
		case "pool_health_check_period":
			p.HealthInterval, err = duration(k, v)
		default:
			err = fmt.Errorf("%w: %s is no pgxpool setting that pg.Open knows (docs/pg.md lists them)", ErrConfig, k)
		}
		if err != nil {
			return pool.Policy{}, err
		}
		delete(cc.RuntimeParams, k)
	}
	return p, nil
}
