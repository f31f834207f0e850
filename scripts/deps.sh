#!/bin/sh
# Installs the Debian packages rwkvscope needs, or says exactly what to run.
# `deps.sh fuzz` adds what `make fuzz` needs: clang, its libFuzzer runtime (libclang-rt-dev
# depends on the libclang-rt-NN-dev of the default clang; on Debian 12 the fuzzer archive is
# there, not in a libfuzzer-NN-dev) and clang's OpenMP.
PKGS="build-essential pkg-config libhdf5-dev hdf5-tools libgsl-dev libopenblas-dev check \
liblbfgs-dev libzip-dev zlib1g-dev libisal-dev libjansson-dev libpcre2-dev libutf8proc-dev gnuplot-nox help2man"
[ "$1" = fuzz ] && PKGS="$PKGS clang libclang-rt-dev libomp-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "rwkvscope: installing missing packages:$missing"
if [ "$(id -u)" = 0 ]; then SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo"
else
    echo "rwkvscope: cannot install as a normal user. Run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
fi
$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null || {
    echo "rwkvscope: apt-get failed. Run: sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
}
