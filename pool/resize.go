package pool

import "github.com/qorbgo/qorb/internal/poolhook"

// resize is poolhook.Resize.
func (p *Pool[C]) resize(maxSlots, spares, minSlots int) error {
	p.loop.Enter()
	defer p.loop.Leave()
	pol := p.pol
	pol.MaxSlots, pol.SparesWanted, pol.MinSlots = maxSlots, spares, minSlots
	pol = pol.capped()
	if err := pol.validate(); err != nil {
		return err
	}
	// Field by field: Claim reads other fields of the policy without the
	// loop held.
	p.pol.MaxSlots, p.pol.SparesWanted, p.pol.MinSlots, p.pol.MaxSlotsPerBackend = pol.MaxSlots, pol.SparesWanted, pol.MinSlots, pol.MaxSlotsPerBackend
	if !p.closing() {
		p.rebalanceNow(false)
	}
	return nil
}

type resizer interface {
	resize(maxSlots, spares, minSlots int) error
}

func init() {
	poolhook.Resize = func(p any, maxSlots, spares, minSlots int) error {
		return p.(resizer).resize(maxSlots, spares, minSlots)
	}
}
