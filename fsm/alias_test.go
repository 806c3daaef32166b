package fsm_test

import lf "github.com/looplab/fsm"

type lfEvent = lf.EventDesc
