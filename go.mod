module github.com/qorbgo/qorb

go 1.26

require (
	github.com/benbjohnson/clock v1.3.5
	github.com/looplab/fsm v1.0.3
)
