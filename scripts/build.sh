#!/usr/bin/env bash
# Configures and builds ichseg into a build folder.
#   scripts/build.sh           release build in build/ (cpu, cuda-emu, and cuda when nvcc is found)
#   scripts/build.sh asan      ASan + UBSan build in build-asan/ (cpu and cuda-emu)
#   scripts/build.sh tsan      ThreadSanitizer build in build-tsan/ (the cuda-emu race tests)
# Arguments after the flavour go to cmake, e.g. scripts/build.sh release -DICH_CUDA=OFF
set -euo pipefail
cd "$(dirname "$0")/.."

flavour=${1:-release}
shift || true
case "$flavour" in
  release) dir=build; flags=() ;;
  asan) dir=build-asan; flags=(-DICH_SANITIZE=ON -DICH_BENCH=OFF) ;;
  tsan) dir=build-tsan; flags=(-DICH_TSAN=ON -DICH_BENCH=OFF -DICH_MPI=OFF) ;;
  *) echo "build.sh: unknown flavour '$flavour' (release, asan, tsan)" >&2; exit 2 ;;
esac

cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${flags[@]}" "$@" >/dev/null
cmake --build "$dir" -j "$(nproc)"
