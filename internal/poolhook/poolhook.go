// Package poolhook reaches into a pool for the packages of this module
// built on it (connset), without widening the pool's public API. Package
// pool sets the functions in its init.
package poolhook

// Resize changes a pool's MaxSlots, SparesWanted and MinSlots at run time
// (p is a *pool.Pool[C]) and rebalances at once: new slots open now, and
// slots beyond the new MaxSlots close now. It returns the policy's error
// when the sizes are invalid, and changes nothing then.
var Resize func(p any, maxSlots, spares, minSlots int) error

// SetPool returns the pool (a *pool.Pool[C]) a connection set (a
// *connset.Set[C]) keeps its connections in, for the simulator's checks.
// Package connset sets it in its init.
var SetPool func(set any) any
