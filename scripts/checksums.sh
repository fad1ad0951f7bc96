#!/bin/sh
# Writes DIR/SHA256SUMS for every release archive in DIR, in the format `sha256sum -c` and
# `shasum -a 256 -c` read (and install.sh parses):
#
#   scripts/checksums.sh DIR
set -eu
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
cd "$1"
if command -v sha256sum >/dev/null 2>&1; then
    sum() { sha256sum "$@"; }
else
    sum() { shasum -a 256 "$@"; }
fi
set -- ollmlx-*.tar.gz
[ -e "$1" ] || { echo "checksums.sh: no ollmlx-*.tar.gz in $(pwd)" >&2; exit 1; }
sum "$@" >SHA256SUMS.tmp
mv SHA256SUMS.tmp SHA256SUMS
cat SHA256SUMS
