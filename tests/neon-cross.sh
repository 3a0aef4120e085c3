#!/bin/sh
# Builds libsadm and its tests for AArch64 with Debian's cross compiler and runs the test
# suite under qemu-user, so that the NEON kernels are tested for real on an x86 machine.
# Usage: tests/neon-cross.sh [build-dir]   (run from the source tree, as root to install
# the packages it needs: gcc-aarch64-linux-gnu, libc6-dev-arm64-cross (a Recommends that
# --no-install-recommends skips), qemu-user, and Check for arm64).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-neon}
mkdir -p "$build"
build=$(cd "$build" && pwd)
sysroot=$build/sysroot

need=""
for p in gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need
fi

# Check, jansson, zlib, libpng and libjpeg for arm64, unpacked into a private sysroot (no multiarch install),
# linked statically so that qemu needs only the cross compiler's C library.
lib=$sysroot/usr/lib/aarch64-linux-gnu
if [ ! -f "$lib/libcheck.a" ] || [ ! -f "$lib/libjansson.a" ] || [ ! -f "$lib/libz.a" ] || [ ! -f "$lib/libjpeg.a" ]; then
    dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64; apt-get update -q; }
    mkdir -p "$build/debs" "$sysroot"
    (cd "$build/debs" && apt-get download check:arm64 libsubunit-dev:arm64 libsubunit0:arm64 libjansson-dev:arm64 zlib1g-dev:arm64 libpng-dev:arm64 libpng16-16:arm64 libjpeg62-turbo-dev:arm64 libjpeg62-turbo:arm64)
    for d in "$build"/debs/*.deb; do dpkg -x "$d" "$sysroot"; done
    rm -f "$lib"/*.so "$lib"/*.so.* # only the static archives, so -l picks them
fi

[ -x "$src/configure" ] || (cd "$src" && autoreconf -fi)
mkdir -p "$build"
cd "$build"
# Generic GEMM, since Debian's OpenBLAS is not installed for arm64 here; qemu finds the
# arm64 C library and libgomp of the cross compiler under /usr/aarch64-linux-gnu.
"$src/configure" -q --host=aarch64-linux-gnu --with-blas=generic --with-cuda=no \
    --disable-shared --enable-static \
    CHECK_CFLAGS="-I$sysroot/usr/include" \
    CHECK_LIBS="$lib/libcheck.a $lib/libsubunit.a -lm -lpthread -lrt" \
    JANSSON_CFLAGS="-I$sysroot/usr/include" JANSSON_LIBS="-L$lib -ljansson" \
    ZLIB_CFLAGS="-I$sysroot/usr/include" ZLIB_LIBS="-L$lib -lz" \
    PNG_CFLAGS="-I$sysroot/usr/include/libpng16" PNG_LIBS="-L$lib -lpng16 -lz -lm" \
    JPEG_CFLAGS="-I$sysroot/usr/include -I$sysroot/usr/include/aarch64-linux-gnu" JPEG_LIBS="-L$lib -ljpeg" \
    PKG_CONFIG_LIBDIR=/nonexistent
SADM_EXEC_WRAPPER="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
    make -j"$(nproc)" check LOG_COMPILER="qemu-aarch64 -L /usr/aarch64-linux-gnu" CK_FORK=no
