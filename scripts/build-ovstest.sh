#!/bin/sh
# Builds Open vSwitch's `tests/ovstest` for the peer benchmark
# (`CTLAB_OVSTEST=<out>/ovstest npm run bench` runs the bench captures through
# `ovstest test-conntrack pcap` beside ctlab). Local use only: CI never builds OVS.
#
#   scripts/build-ovstest.sh SOURCE [OUT_DIR] [COMMIT]
#
# SOURCE is an Open vSwitch tree: a checkout (its work tree is copied as is) or
# a git directory (a bare clone such as the one `git clone --bare
# https://github.com/openvswitch/ovs` makes), from which COMMIT (default HEAD)
# is exported with `git archive`. OUT_DIR (default $TMPDIR/ctlab-ovstest)
# receives `ovstest` and `ovstest.commit` (the commit built, which the bench
# prints beside the ratios); the build tree is OUT_DIR/src.
#
# Needs a C compiler, make, autoconf, automake, libtool and python3 (Debian:
# apt-get install build-essential autoconf automake libtool python3). Only what
# tests/ovstest links is built (lib/libopenvswitch.la and the generated sources
# it includes), with the OVS default -O2, no SSL, no shared libraries.
set -eu

usage() {
  echo "Usage: $0 SOURCE [OUT_DIR] [COMMIT]: SOURCE is an Open vSwitch checkout or git directory" >&2
  exit 2
}
[ $# -ge 1 ] && [ $# -le 3 ] || usage
source=$1
out=${2:-${TMPDIR:-/tmp}/ctlab-ovstest}
commit=${3:-HEAD}
jobs=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)

for tool in cc make autoreconf libtoolize python3 tar; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "Missing build tool: \"$tool\" (Debian: apt-get install build-essential autoconf automake libtool python3)" >&2
    exit 1
  }
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
src=$out/src
rm -rf "$src"
mkdir -p "$src"

if [ -f "$source/configure.ac" ]; then
  # A work tree: its commit if it is a git checkout, else "unknown".
  sha=$(git -C "$source" rev-parse HEAD 2>/dev/null || echo unknown)
  dirty=$(git -C "$source" status --porcelain 2>/dev/null | head -n 1)
  [ -z "$dirty" ] || sha="$sha-dirty"
  (cd "$source" && tar --exclude=.git -cf - .) | (cd "$src" && tar -xf -)
elif git --git-dir="$source" rev-parse --verify --quiet "$commit^{commit}" >/dev/null; then
  sha=$(git --git-dir="$source" rev-parse "$commit^{commit}")
  git --git-dir="$source" archive --format=tar "$sha" | (cd "$src" && tar -xf -)
else
  echo "Not an Open vSwitch tree: \"$source\": no configure.ac and no commit \"$commit\" in it as a git directory" >&2
  exit 1
fi
[ -f "$src/tests/test-conntrack.c" ] || {
  echo "Not an Open vSwitch tree: \"$source\": tests/test-conntrack.c is missing" >&2
  exit 1
}

cd "$src"
echo "build-ovstest: Open vSwitch $sha in $src ($jobs jobs)" >&2
./boot.sh >"$out/boot.log" 2>&1 || { tail -n 30 "$out/boot.log" >&2; exit 1; }
./configure --disable-ssl --disable-shared --enable-silent-rules CFLAGS="-O2" >"$out/configure.log" 2>&1 || {
  tail -n 30 "$out/configure.log" >&2
  exit 1
}
# BUILT_SOURCES (generated headers, lib/dirs.c, ...) are only made by `make all`;
# building them first lets make stop at ovstest instead of the whole tree.
built=$(printf 'ctlab-print-built:\n\t@echo $(BUILT_SOURCES)\n' | make -s -f Makefile -f - ctlab-print-built)
# shellcheck disable=SC2086 # BUILT_SOURCES is a word list
make -j"$jobs" $built >"$out/make.log" 2>&1 && make -j"$jobs" tests/ovstest >>"$out/make.log" 2>&1 || {
  tail -n 40 "$out/make.log" >&2
  exit 1
}
cp tests/ovstest "$out/ovstest"
echo "$sha" >"$out/ovstest.commit"
# A smoke test: the command the bench runs must exist in this build.
"$out/ovstest" --help 2>/dev/null | grep -q test-conntrack || {
  echo "The built ovstest has no \"test-conntrack\" command: $out/ovstest" >&2
  exit 1
}
echo "$out/ovstest"
