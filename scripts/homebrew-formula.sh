#!/bin/sh
# Prints packaging/homebrew/ollmlx.rb for one release: its source tarball's URL and sha256.
#
#   scripts/homebrew-formula.sh VERSION SHA256 [REPO]
#
# REPO is owner/name on GitHub (default ollmlx/ollmlx). The release workflow runs this with the
# sha256 of GitHub's tarball of the tag and attaches the output to the release as ollmlx.rb,
# ready to copy into a tap.
set -eu
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    sed -n "2,8p" "$0" >&2
    exit 2
fi
version=${1#v} sha=$2 repo=${3:-ollmlx/ollmlx}
case "$sha" in
    *[!0-9a-f]* | "") echo "homebrew-formula.sh: $sha is not a sha256" >&2; exit 2 ;;
esac
[ ${#sha} -eq 64 ] || { echo "homebrew-formula.sh: $sha is not a sha256" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
sed -e "s|^  url \".*\"|  url \"https://github.com/$repo/archive/refs/tags/v$version.tar.gz\"|" \
    -e "s|^  sha256 \".*\"|  sha256 \"$sha\"|" \
    -e "s|github.com/ollmlx/ollmlx|github.com/$repo|g" \
    "$root/packaging/homebrew/ollmlx.rb"
