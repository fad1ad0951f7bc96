#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` from the llama.cpp source vendored in a pinned llama-cpp-python
# sdist from PyPI (its sha256 checked), with cmake, into a cache keyed by version, and prints the
# binary's path. A cached build is reused at once (a cold build takes about 7 minutes on 2 cores).
# llama.cpp's RPC backend is built in (`llama-server --rpc`), and its `rpc-server` lands beside
# llama-server in the same bin/ (docs/scale-out.md).
#
#   scripts/build-llama-server.sh          # prints /path/to/llama-server
#   OLLMLX_LLAMA_CACHE=dir scripts/...     # cache location (default ~/.cache/ollmlx/llama-server)
#
# On a Mac, `brew install llama.cpp` gives the same binary.
set -euo pipefail

SDIST_VERSION=0.3.36   # llama-cpp-python; vendors llama.cpp commit 0c1e570 (ggml 0.25.3)
SDIST_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
LLAMA_CPP_COMMIT=0c1e570

cache_root=${OLLMLX_LLAMA_CACHE:-$HOME/.cache/ollmlx/llama-server}
# GGML_NATIVE tunes for this CPU: key the cache by the CPU's flags as well as the version.
cpu_key=$( (grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || sysctl -n machdep.cpu.features 2>/dev/null || uname -m) | sha256sum | cut -c1-12)
# ggml's AMX kernels (chosen by -march=native on Xeons with AMX, e.g. Sapphire Rapids) crash
# llama-server with a segfault on small quantized models (tiny-llama-q8_0.gguf, measured): build
# without AMX there. The AVX-512 kernels serve those CPUs instead.
extra_flags=()
if grep -qw amx_int8 /proc/cpuinfo 2>/dev/null; then
  extra_flags=("-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
               "-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16")
  cpu_key="$cpu_key-noamx"
fi
# "-rpc": the build flags changed (GGML_RPC); an older cached build lacks rpc-server.
dest="$cache_root/$SDIST_VERSION-rpc-$(uname -s)-$(uname -m)-$cpu_key"
bin="$dest/bin/llama-server"
if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi

for tool in cmake c++ python3; do
  command -v "$tool" >/dev/null || { echo "build-llama-server: $tool is needed (apt-get install cmake g++)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "build-llama-server: fetching llama-cpp-python $SDIST_VERSION (sdist)" >&2
python3 -m pip download --quiet --no-binary :all: --no-deps \
  "llama-cpp-python==$SDIST_VERSION" -d "$work" >&2
sdist="$work/llama_cpp_python-$SDIST_VERSION.tar.gz"
echo "$SDIST_SHA256  $sdist" | sha256sum -c --quiet - >&2 || {
  echo "build-llama-server: checksum mismatch for $sdist" >&2
  exit 1
}
tar -xzf "$sdist" -C "$work"
src="$work/llama_cpp_python-$SDIST_VERSION/vendor/llama.cpp"

echo "build-llama-server: building llama-server (llama.cpp $LLAMA_CPP_COMMIT); this takes minutes" >&2
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
  -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON -DGGML_RPC=ON ${extra_flags[@]+"${extra_flags[@]}"} >&2
cmake --build "$work/build" --config Release -j "$(nproc 2>/dev/null || echo 2)" --target llama-server ggml-rpc-server >&2

# Install atomically: a half-copied binary must never look like a cached build.
mkdir -p "$cache_root"
stage=$(mktemp -d "$cache_root/.stage-XXXXXX")
mkdir -p "$stage/bin"
cp "$work/build/bin/llama-server" "$stage/bin/"
cp "$work/build/bin/ggml-rpc-server" "$stage/bin/rpc-server"
printf 'llama-cpp-python %s\nllama.cpp %s\n' "$SDIST_VERSION" "$LLAMA_CPP_COMMIT" > "$stage/VERSION"
rm -rf "$dest"
mv "$stage" "$dest"
echo "$bin"
