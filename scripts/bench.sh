#!/usr/bin/env bash
# bench.sh runs the pool's benchmarks against jackc/puddle in interleaved
# rounds and prints benchstat tables with puddle and qorb side by side.
#
# Usage: scripts/bench.sh [OUTDIR]
#
# Each round runs every benchmark once, so qorb and puddle alternate in
# time and a slow moment of the machine falls on both. OUTDIR (default: a
# new temporary directory) receives bench.txt, the rounds' output, and
# heap.txt, that of BenchmarkIdleSlotHeap; feed them to benchstat again
# with other projections.
#
# Environment:
#   BENCH_ROUNDS  number of rounds (default 6: benchstat wants 6 samples
#                 for its confidence intervals)
#   BENCH_TIME    -benchtime of each benchmark in a round (default 200ms;
#                 a count such as 100000x works too)
#   BENCH_CPU     -cpu list of BenchmarkClaimReleaseParallel (default
#                 1,2,8,16)
set -euo pipefail

rounds=${BENCH_ROUNDS:-6}
benchtime=${BENCH_TIME:-200ms}
cpus=${BENCH_CPU:-1,2,8,16}
benchstat=(go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da)

if (($# > 1)); then
	echo "usage: $0 [OUTDIR]" >&2
	exit 2
fi
if (($# == 1)); then
	mkdir -p -- "$1"
	out=$(cd -- "$1" && pwd)
else
	out=$(mktemp -d "${TMPDIR:-/tmp}/qorb-bench.XXXXXX")
fi
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

raw=$out/bench.txt
heap=$out/heap.txt
: >"$raw"
: >"$heap"

# Fetch and build benchstat before the long part, so that it fails early.
"${benchstat[@]}" /dev/null >/dev/null

# bench FILE ARGS... runs the pool's benchmarks with ARGS and appends
# their output to FILE; on failure it shows the output and stops.
bench() {
	local file=$1 log
	shift
	log=$(mktemp "$out/run.XXXXXX")
	if ! go test -run '^$' -count 1 "$@" ./pool/ >"$log" 2>&1; then
		cat "$log" >&2
		exit 1
	fi
	cat "$log" >>"$file"
	rm -f "$log"
}

serial() {
	bench "$raw" -bench '^Benchmark(ClaimRelease|SixtyFourClaimers|ThousandClaimers)$' -benchtime "$benchtime" -benchmem
}
parallel() {
	bench "$raw" -bench '^BenchmarkClaimReleaseParallel$' -benchtime "$benchtime" -benchmem -cpu "$cpus"
}

start=$SECONDS
for ((r = 1; r <= rounds; r++)); do
	echo "round $r of $rounds ($((SECONDS - start))s)" >&2
	# Alternate the order of the two runs too, round by round.
	if ((r % 2)); then
		serial
		parallel
	else
		parallel
		serial
	fi
	# Three pools each, the last one reported: the first pool of a process
	# also pays for one-time allocations of the runtime and the packages.
	bench "$heap" -bench '^BenchmarkIdleSlotHeap$' -benchtime 3x
done
echo "$rounds rounds in $((SECONDS - start))s; raw output in $out" >&2

echo "$(go version), $(getconf _NPROCESSORS_ONLN) CPUs, $rounds rounds of -benchtime $benchtime"
echo
cd -- "$out"
"${benchstat[@]}" -col '/impl@(puddle qorb)' bench.txt
echo
"${benchstat[@]}" -filter '.unit:B/slot' heap.txt
