#!/bin/sh
# The kill campaign (issue 18), not part of make check: trains a small DiT on
# Fashion-MNIST, interrupts it KILLS times at random moments (kill -9, SIGTERM or SIGINT;
# every third kill aimed at a checkpoint write), resumes it each time, and compares the
# final checkpoint byte for byte with an uninterrupted run of the same settings. Then
# it reports leftovers (temporary files) and repeated log lines. Plain and --sadm.
# Usage: tests/slow/kill_campaign.sh [KILLS] [STEPS] [WORKDIR]   (from the build folder;
# SADM=path/to/sadm overrides the program). Exit 1 on any difference or leftover.
set -eu
kills=${1:-20}
steps=${2:-40}
work=${3:-$(mktemp -d /tmp/sadm-kill-XXXXXX)}
mkdir -p "$work"
sadm=${SADM:-./sadm}
small="--depth 1 --hidden-size 16 --num-heads 2 --patch-size 8 --batch-size 8 --ckpt-every 3 --log-every 1 --threads 2 --fd-samples 0 --steps $steps"
sadm_opts="--sadm --disc-depth 1 --disc-hidden 16 --disc-heads 2 --disc-patch 8 --disc-embed 8"
fail=0
rand() { od -An -N2 -tu2 /dev/urandom | tr -d ' '; }
for arm in plain sadm; do
    extra=""
    [ "$arm" = sadm ] && extra=$sadm_opts
    ref="$work/$arm-ref"
    run="$work/$arm-killed"
    rm -rf "$ref" "$run"
    $sadm train $small $extra --run-dir "$ref" >"$work/$arm-ref.log" 2>&1
    n=0 resumed=0
    while [ $n -lt "$kills" ]; do
        resume=""
        [ -f "$run/checkpoint.safetensors" ] && resume=--resume
        $sadm train $small $extra --run-dir "$run" $resume >>"$work/$arm-killed.log" 2>&1 &
        pid=$!
        # once the run trains (a new log line: before that a background job's SIGINT is
        # still ignored, as sh starts it), 0-1.5 s later; every third kill waits for a
        # temporary checkpoint to appear instead
        before=$(cat "$run/log.jsonl" 2>/dev/null | wc -l)
        for _ in $(seq 1000); do
            [ "$(cat "$run/log.jsonl" 2>/dev/null | wc -l)" -gt "$before" ] && break
            kill -0 $pid 2>/dev/null || break
            sleep 0.02
        done
        if [ $((n % 3)) -eq 2 ]; then
            for _ in $(seq 500); do ls "$run"/*.tmp.* >/dev/null 2>&1 && break; sleep 0.01; done
        else
            sleep "$(awk -v r="$(rand)" 'BEGIN { printf "%.2f", 1.5 * r / 65535 }')"
        fi
        case $(($(rand) % 3)) in 0) sig=KILL ;; 1) sig=TERM ;; *) sig=INT ;; esac
        kill -s $sig $pid 2>/dev/null || true
        wait $pid 2>/dev/null || true
        n=$((n + 1))
        grep -q "done at step $steps" "$work/$arm-killed.log" && break
    done
    # finish the run
    until grep -q "done at step $steps" "$work/$arm-killed.log"; do
        $sadm train $small $extra --run-dir "$run" --resume >>"$work/$arm-killed.log" 2>&1 || true
        resumed=$((resumed + 1))
        [ $resumed -lt 5 ] || break
    done
    same=no
    cmp -s "$ref/checkpoint.safetensors" "$run/checkpoint.safetensors" && cmp -s "$ref/model-ema.safetensors" "$run/model-ema.safetensors" && same=yes
    left=$(ls "$run" | grep -c '\.tmp\.' || true)
    dup=$(grep -o '"step": [0-9]*' "$run/log.jsonl" | sort | uniq -d | wc -l)
    lines=$(grep -c '"loss"' "$run/log.jsonl" || true)
    echo "kill campaign: $arm: $n interruptions, final checkpoint and EMA identical to the uninterrupted run: $same; temporary files left: $left; log lines $lines for $steps steps, repeated steps: $dup"
    [ "$same" = yes ] && [ "$left" -eq 0 ] && [ "$dup" -eq 0 ] && [ "$lines" -eq "$steps" ] || fail=1
done
[ $fail -eq 0 ] && echo "kill campaign: passed ($work)" || echo "kill campaign: FAILED ($work)"
exit $fail
