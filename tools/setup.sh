#!/usr/bin/env bash
# Installs what patlab needs from the distribution (Debian 12 / Ubuntu 24.04), then configures
# and builds into build/. nvcc is taken from PATH or /usr/local/cuda/bin; without it the build
# is CPU-only and says so.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
need_cmd() { command -v "$1" > /dev/null 2>&1 || missing+=("$2"); }
need_pc() { pkg-config --exists "$1" 2> /dev/null || missing+=("$2"); }
need_cmd g++ g++
need_cmd pkg-config pkg-config
need_cmd python3 python3
need_cmd meson meson
need_cmd ninja ninja-build
need_cmd doxygen doxygen
need_pc eigen3 libeigen3-dev
need_pc catch2 catch2
need_pc CLI11 libcli11-dev
# numpy and matplotlib: the peers-cpu test reads exports with tools/peers/export_io.py, the figures
# test draws with tools/figures/. The tests run the python3 found on PATH at configure time; where
# that one lacks them (a pyenv or venv Python) but the distribution's has them, the distribution's.
has_py_modules() { "$1" -c "import numpy, matplotlib" > /dev/null 2>&1; }
if ! has_py_modules python3 && ! has_py_modules /usr/bin/python3; then
  missing+=(python3-numpy python3-matplotlib)
fi
if [[ ${#missing[@]} -gt 0 ]]; then
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo=sudo
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
fi

if ! command -v nvcc > /dev/null 2>&1 && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi
if ! has_py_modules python3 && has_py_modules /usr/bin/python3; then
  echo "setup: $(command -v python3) lacks numpy or matplotlib; the tests use /usr/bin/python3"
  export PATH=/usr/bin:$PATH
fi
# shellcheck source=tools/nvcc_env.sh
source tools/nvcc_env.sh
# shellcheck disable=SC2046
[[ -f build/build.ninja ]] || meson setup build $(nvcc_native_file build) --buildtype=release > build-setup.log 2>&1 || {
  cat build-setup.log
  exit 1
}
grep -h "CUDA:" build-setup.log 2> /dev/null || true
rm -f build-setup.log
ninja -C build
