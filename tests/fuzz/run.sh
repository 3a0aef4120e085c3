#!/bin/sh
# Runs the fuzz harnesses built by build.sh: first every committed reproducer of
# tests/fuzz/regress/<harness>/ once (each must pass now), then each harness for SECONDS
# on a copy of its seed corpus tests/fuzz/corpus/<harness>/ with its dictionary.
# Memory: libFuzzer's 2 GiB RSS limit and a 1 GiB single-allocation limit, so a loader
# that allocates what a file declares without bounding it is reported as a crash.
# Usage: run.sh BUILDDIR [SECONDS] [HARNESS...]   (exit 1 on any crash)
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$1
secs=${2:-60}
shift 2 2>/dev/null || shift $#
harnesses=${*:-"safetensors npz idx image dataset model pt latents"}
fuzz="$build/tests/fuzz"
work=${FUZZ_WORKDIR:-$build/fuzz-work}
mkdir -p "$work"
limits="-rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=25"
fail=0
for h in $harnesses; do
    bin="$fuzz/fuzz_$h"
    [ -x "$bin" ] || { echo "fuzz: $bin is missing (make fuzz)" >&2; exit 1; }
    if [ -d "$src/tests/fuzz/regress/$h" ]; then
        if ! "$bin" $limits "$src/tests/fuzz/regress/$h"/* >"$work/$h-regress.log" 2>&1; then
            echo "fuzz: $h: a committed reproducer fails (see $work/$h-regress.log)" >&2
            tail -30 "$work/$h-regress.log" >&2
            fail=1
            continue
        fi
        echo "fuzz: $h: $(ls "$src/tests/fuzz/regress/$h" | wc -l) reproducers pass"
    fi
    [ "$secs" -gt 0 ] || continue
    corpus="$work/corpus-$h"
    mkdir -p "$corpus" "$work/crashes-$h"
    cp -n "$src/tests/fuzz/corpus/$h"/* "$corpus"/ 2>/dev/null || true
    dict=""
    [ -f "$src/tests/fuzz/$h.dict" ] && dict="-dict=$src/tests/fuzz/$h.dict"
    if "$bin" $limits $dict -max_total_time="$secs" -print_final_stats=1 \
        -artifact_prefix="$work/crashes-$h/" "$corpus" >"$work/$h.log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$h.log")
        cov=$(grep -o 'cov: [0-9]*' "$work/$h.log" | tail -1)
        echo "fuzz: $h: $execs executions in ${secs}s, $cov, no crash"
    else
        echo "fuzz: $h: CRASH (artifacts in $work/crashes-$h, log $work/$h.log)" >&2
        grep -A25 "ERROR\|==ERROR\|runtime error\|out-of-memory" "$work/$h.log" | head -40 >&2
        fail=1
    fi
done
exit $fail
