#!/bin/sh
# Packs one release archive, ollmlx-<version>-<os>-<arch>.tar.gz, from a built binary:
#
#   scripts/package.sh BINARY VERSION OS ARCH OUTDIR [GENERATOR]
#
#   OS is linux or macos; ARCH is what `uname -m` says there (x86_64, aarch64, arm64).
#   GENERATOR is an ollmlx binary that runs on this machine, used to write the completions and
#   man pages (default: BINARY itself; pass a host build when BINARY was cross-compiled).
#
# The archive holds one directory, ollmlx-<version>-<os>-<arch>/, laid out as install.sh and the
# Homebrew formula expect it:
#
#   bin/ollmlx  LICENSE  README.md
#   completions/{ollmlx.bash,_ollmlx,ollmlx.fish}
#   man/man1/ollmlx.1, man/man1/ollmlx-<command>.1
#   packaging/systemd/ollmlx.service  packaging/launchd/com.ollmlx.serve.plist
#
# Prints the archive's path. Used by .github/workflows/release.yml and by the install tests.
set -eu

if [ $# -lt 5 ] || [ $# -gt 6 ]; then
    sed -n '2,10p' "$0" >&2
    exit 2
fi
bin=$1 version=$2 os=$3 arch=$4 out=$5 gen=${6:-$1}
root=$(cd "$(dirname "$0")/.." && pwd)

case "$os" in linux | macos) ;; *) echo "package.sh: OS must be linux or macos, not $os" >&2; exit 2 ;; esac
[ -x "$bin" ] || { echo "package.sh: $bin is not an executable" >&2; exit 2; }

name="ollmlx-$version-$os-$arch"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
dir="$stage/$name"
mkdir -p "$dir/bin" "$dir/completions" "$dir/man/man1" \
    "$dir/packaging/systemd" "$dir/packaging/launchd"

cp "$bin" "$dir/bin/ollmlx"
chmod 755 "$dir/bin/ollmlx"
cp "$root/LICENSE" "$root/README.md" "$dir/"
cp "$root/packaging/systemd/ollmlx.service" "$dir/packaging/systemd/"
cp "$root/packaging/launchd/com.ollmlx.serve.plist" "$dir/packaging/launchd/"

# Generated from the clap definition. A clean environment, so that nothing of the build
# machine's (an OLLAMA_HOST, say) can find its way into the text.
env -i "$gen" completions bash >"$dir/completions/ollmlx.bash"
env -i "$gen" completions zsh >"$dir/completions/_ollmlx"
env -i "$gen" completions fish >"$dir/completions/ollmlx.fish"
env -i "$gen" man "$dir/man/man1"

mkdir -p "$out"
out=$(cd "$out" && pwd)
# Owner and group 0 where tar knows how (GNU tar); BSD tar on macOS records the builder's.
if tar --version 2>/dev/null | grep -q 'GNU tar'; then
    tar -C "$stage" --owner=0 --group=0 -czf "$out/$name.tar.gz" "$name"
else
    tar -C "$stage" -czf "$out/$name.tar.gz" "$name"
fi
echo "$out/$name.tar.gz"
