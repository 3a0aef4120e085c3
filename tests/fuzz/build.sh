#!/bin/sh
# Builds the libFuzzer harnesses of tests/fuzz/ into BUILDDIR (default build-fuzz/ beside
# the sources): libsadm configured with clang, coverage instrumentation, ASan and UBSan
# (errors abort), static, without OpenMP and with the generic GEMM (the parsers need
# neither, and a static single-threaded build keeps libFuzzer's view simple).
# Needs clang and libclang-rt-14-dev (Debian); `make fuzz` calls this.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$src/build-fuzz}
command -v clang >/dev/null || { echo "fuzz: needs clang (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
mkdir -p "$out"
# autotools build in another folder only from an unconfigured source tree: when the
# sources are configured in place (the README's build), build from a copy of the files
# git knows about (refreshed each time: only changed files are copied).
if [ -f "$src/config.status" ]; then
    command -v git >/dev/null && git -C "$src" rev-parse >/dev/null 2>&1 ||
        { echo "fuzz: $src is configured in place and not a git checkout: run make distclean first" >&2; exit 1; }
    mkdir -p "$out/src"
    (cd "$src" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp -u --parents -t "$out/src")
    [ -x "$out/src/configure" ] || (cd "$out/src" && autoreconf -fi >/dev/null 2>&1)
    src="$out/src"
fi
cd "$out"
flags="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
if [ ! -f Makefile ]; then
    "$src/configure" CC=clang CFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" --disable-openmp \
        --with-blas=generic --disable-shared --enable-static >configure.log 2>&1 ||
        { tail -20 configure.log >&2; exit 1; }
fi
make -j"$(nproc)" fuzz-harnesses >make.log 2>&1 || { tail -30 make.log >&2; exit 1; }
echo "fuzz: harnesses built in $out/tests/fuzz"
