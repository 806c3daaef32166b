package qsim

import "flag"

var update = flag.Bool("update", false, "copy testdata/scenarios into sim/qsim/scenarios")
