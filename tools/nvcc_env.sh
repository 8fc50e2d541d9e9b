# Sourced by tools/setup.sh before `meson setup`: Meson older than 1.4 passes nvcc no -MD/-MF
# (mesonbuild/meson#11969), so ninja would never rebuild a .cu object after one of its headers
# changed. There nvcc goes through tools/nvcc-depfile, which writes the depfile ninja reads.
#   meson setup BUILD $(nvcc_native_file BUILD) ...
# nvcc_native_file BUILD: on such a Meson (and with nvcc found), writes BUILD/nvcc-depfile.ini, a
# native file naming the wrapper as the CUDA compiler, and prints the option that passes it;
# otherwise prints nothing.
nvcc_native_file() {
  local build=$1 tools
  command -v meson > /dev/null 2>&1 || return 0
  [[ $(printf '%s\n%s\n' 1.4.0 "$(meson --version)" | sort -V | head -1) != 1.4.0 ]] || return 0
  command -v nvcc > /dev/null 2>&1 || return 0
  tools=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  mkdir -p "$build"
  printf "[binaries]\ncuda = '%s/nvcc-depfile'\n" "$tools" > "$build/nvcc-depfile.ini"
  echo "--native-file=$(cd "$build" && pwd)/nvcc-depfile.ini"
}
