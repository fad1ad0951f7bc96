#!/bin/sh
# Installs ollmlx on Linux and macOS from a release archive, after checking it against the
# release's SHA256SUMS:
#
#   curl -fsSL https://github.com/ollmlx/ollmlx/releases/latest/download/install.sh | sh
#
# Environment (all optional):
#   OLLMLX_VERSION   the version to install, e.g. 0.2.0 (default: the latest release)
#   OLLMLX_BASE_URL  where the archives and SHA256SUMS live, for mirrors and tests
#                    (default: the GitHub release of OLLMLX_VERSION, or the latest one)
#   OLLMLX_PREFIX    install prefix: the binary goes to $OLLMLX_PREFIX/bin
#                    (default: /usr/local as root, ~/.local otherwise)
#   OLLMLX_SERVICE   `no` never installs a service; the default installs and starts the systemd
#                    unit when run as root on a Linux machine running systemd
#
# Nothing is installed unless the archive's checksum matches. docs/install.md says how to check
# the signature of SHA256SUMS as well.

# Everything is inside main, called on the last line, so that a download cut short runs nothing.
main() {
set -eu

status() { echo ">>> $*" >&2; }
error() {
    echo "ERROR: $*" >&2
    exit 1
}
available() { command -v "$1" >/dev/null 2>&1; }

# --- Where we are ---------------------------------------------------------------------------
case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=macos ;;
    *) error "ollmlx runs on Linux and macOS, not $(uname -s)." ;;
esac
case "$(uname -m)" in
    x86_64 | amd64) arch=x86_64 ;;
    aarch64 | arm64) if [ "$os" = macos ]; then arch=arm64; else arch=aarch64; fi ;;
    *) error "there is no ollmlx release for $(uname -m) machines." ;;
esac

if available curl; then
    fetch() { curl --fail --silent --show-error --location --output "$2" "$1"; }
elif available wget; then
    fetch() { wget --quiet --output-document="$2" "$1"; }
else
    error "curl or wget is needed to download ollmlx."
fi
if available sha256sum; then
    sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif available shasum; then
    sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
    error "sha256sum or shasum is needed to check the download."
fi
for tool in tar gzip mktemp; do
    available "$tool" || error "$tool is needed to install ollmlx."
done

version=${OLLMLX_VERSION:-}
version=${version#v}
if [ -n "${OLLMLX_BASE_URL:-}" ]; then
    base=${OLLMLX_BASE_URL%/}
elif [ -n "$version" ]; then
    base="https://github.com/ollmlx/ollmlx/releases/download/v$version"
else
    base="https://github.com/ollmlx/ollmlx/releases/latest/download"
fi

if [ -n "${OLLMLX_PREFIX:-}" ]; then
    prefix=$OLLMLX_PREFIX
elif [ "$(id -u)" -eq 0 ]; then
    prefix=/usr/local
else
    [ -n "${HOME:-}" ] || error "HOME is not set; set OLLMLX_PREFIX to choose where to install."
    prefix="$HOME/.local"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- Download and check -----------------------------------------------------------------------
# SHA256SUMS names every archive of the release, so it also tells us the latest version's
# archive name without asking GitHub's API.
status "Downloading $base/SHA256SUMS"
fetch "$base/SHA256SUMS" "$tmp/SHA256SUMS" ||
    error "could not download $base/SHA256SUMS; nothing was installed."
if [ -n "$version" ]; then
    pattern="ollmlx-$version-$os-$arch.tar.gz"
else
    pattern="ollmlx-*-$os-$arch.tar.gz"
fi
# Lines are `<sha256>  <name>` (or `<sha256> *<name>` from a binary-mode tool).
expected='' name=''
while read -r sum file; do
    file=${file#\*}
    # shellcheck disable=SC2254 # $pattern is a glob on purpose.
    case "$file" in $pattern) expected=$sum name=$file ;; esac
done <"$tmp/SHA256SUMS"
[ -n "$name" ] || error "$base/SHA256SUMS lists no $pattern: there is no such release for $os/$arch."

status "Downloading $base/$name"
fetch "$base/$name" "$tmp/$name" ||
    error "could not download $base/$name; nothing was installed."
actual=$(sha256 "$tmp/$name")
if [ "$actual" != "$expected" ]; then
    error "checksum mismatch for $name: SHA256SUMS says $expected, the download is $actual.
The download is corrupted or was tampered with; nothing was installed. Try again, or report it."
fi
status "Checksum verified ($actual)"

mkdir "$tmp/x"
tar -xzf "$tmp/$name" -C "$tmp/x" || error "could not unpack $name; nothing was installed."
src="$tmp/x/${name%.tar.gz}"
[ -x "$src/bin/ollmlx" ] || error "$name has no bin/ollmlx; nothing was installed."

# --- Install ----------------------------------------------------------------------------------
status "Installing ollmlx to $prefix/bin"
mkdir -p "$prefix/bin" ||
    error "cannot create $prefix/bin (run as root, or set OLLMLX_PREFIX to a writable place)."
# Copy beside the target, then rename: a running ollmlx keeps its old file, and an interrupted
# copy never leaves half a binary on PATH.
cp "$src/bin/ollmlx" "$prefix/bin/.ollmlx.new"
chmod 755 "$prefix/bin/.ollmlx.new"
mv -f "$prefix/bin/.ollmlx.new" "$prefix/bin/ollmlx"

share="$prefix/share"
mkdir -p "$share/man/man1" "$share/bash-completion/completions" "$share/zsh/site-functions" \
    "$share/fish/vendor_completions.d" "$share/ollmlx"
cp "$src"/man/man1/*.1 "$share/man/man1/"
cp "$src/completions/ollmlx.bash" "$share/bash-completion/completions/ollmlx"
cp "$src/completions/_ollmlx" "$share/zsh/site-functions/_ollmlx"
cp "$src/completions/ollmlx.fish" "$share/fish/vendor_completions.d/ollmlx.fish"
cp "$src/packaging/systemd/ollmlx.service" "$src/packaging/launchd/com.ollmlx.serve.plist" \
    "$src/LICENSE" "$share/ollmlx/"

case ":${PATH:-}:" in
    *":$prefix/bin:"*) ;;
    *) status "Add $prefix/bin to your PATH to run ollmlx." ;;
esac

# --- Service (optional) -------------------------------------------------------------------------
if [ "${OLLMLX_SERVICE:-}" != no ]; then
    if [ "$os" = linux ] && [ "$(id -u)" -eq 0 ] && available systemctl && [ -d /run/systemd/system ]; then
        install_systemd_unit "$prefix/bin/ollmlx" "$share/ollmlx/ollmlx.service"
    elif [ "$os" = linux ]; then
        status "To run ollmlx as a service, see $share/ollmlx/ollmlx.service (needs root and systemd)."
    else
        status "To start ollmlx at login: $share/ollmlx/com.ollmlx.serve.plist (see docs/install.md)."
    fi
fi

"$prefix/bin/ollmlx" --help >/dev/null 2>&1 ||
    error "the installed $prefix/bin/ollmlx does not run on this machine."
status "Installed ${name%.tar.gz}."
status "Start the server with: ollmlx serve"
}

# Creates the ollmlx user, installs the unit with ExecStart at the installed binary, and starts it.
install_systemd_unit() {
    if ! id ollmlx >/dev/null 2>&1; then
        status "Creating the ollmlx user"
        useradd -r -s /bin/false -U -m -d /var/lib/ollmlx ollmlx
    fi
    status "Installing /etc/systemd/system/ollmlx.service"
    sed "s|^ExecStart=.*|ExecStart=$1 serve|" "$2" >/etc/systemd/system/ollmlx.service
    systemctl daemon-reload
    systemctl enable ollmlx >/dev/null 2>&1
    systemctl restart ollmlx
    status "ollmlx is running as a service on 127.0.0.1:11434 (systemctl status ollmlx)."
}

main "$@"
