package main

import "flag"

var update = flag.Bool("update", false, "copy testdata/scenarios into cmd/qsim/scenarios")
