#!/bin/sh
# Two builds of sadm side by side on one machine, alternating, for a before/after check:
#     bench/ab_builds.sh OLD_SADM NEW_SADM ROUNDS BENCH_ARGS...
# e.g. bench/ab_builds.sh /tmp/old/sadm ./sadm 3 bench train --steps 3 --case fmnist
# Runs `OLD BENCH_ARGS` and `NEW BENCH_ARGS` ROUNDS times each, in turn (old, new, new,
# old, ... so that drifts in the machine's speed hit both sides), takes the libsadm
# seconds column of every case row (the third column of the model benchmarks' tables;
# AB_COLUMNS="3 4" takes more, e.g. bench sadm's plain and SADM steps), and prints each
# case's median for both builds and new/old. Prints the CPU, the kernel
# set and the BLAS core first: compare numbers from one run only.
set -eu
[ $# -ge 4 ] || { echo "usage: $0 OLD_SADM NEW_SADM ROUNDS BENCH_ARGS..." >&2; exit 2; }
old=$1 new=$2 rounds=$3
shift 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') ($(nproc) cores)"
"$new" info | grep -E '^(active|BLAS|threads)' || true
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; command: sadm $*"
i=0
while [ "$i" -lt "$rounds" ]; do
    if [ $((i % 2)) -eq 0 ]; then order="old new"; else order="new old"; fi
    for side in $order; do
        bin=$old
        [ "$side" = new ] && bin=$new
        "$bin" "$@" 2>/dev/null | awk -v side="$side" -v cols="${AB_COLUMNS:-3}" '
            $2 ~ /^[0-9]+$/ && $3 ~ /^[0-9.]+$/ {
                n = split(cols, c, " ")
                for (i = 1; i <= n; i++) print side, (n > 1 ? $1 ":col" c[i] : $1), $(c[i])
            }' >>"$tmp/times"
    done
    i=$((i + 1))
done
awk '
function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ v[$1 "," $2] = v[$1 "," $2] " " $3; cases[$2] = 1 }
END {
    printf "%-10s %12s %12s %10s\n", "case", "old s", "new s", "new/old"
    for (c in cases) {
        o = median(v["old," c]); n = median(v["new," c])
        printf "%-10s %12.3f %12.3f %9.3fx\n", c, o, n, n / o
    }
}' "$tmp/times"
