#!/usr/bin/env bash
# Sets up, builds and runs every test: the release build's whole suite (cpu and
# cuda-emu, and cuda when a GPU is present), the same suite under ASan + UBSan,
# and the cuda-emu race tests under ThreadSanitizer.
#   ICH_TEST_FLAVOURS="release"   run only some of release, asan, tsan
#   ICH_TEST_LABEL=parity         run only one CTest label in each flavour
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

# ctest runs one test per core; inside a test, OpenMP threads must not spin-wait for cores
# the other test holds (measured 10-40x slower on 2 busy cores), and OpenBLAS keeps to
# one thread so it does not fight OpenMP. Tests that compare thread counts set them
# themselves.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}

flavours=${ICH_TEST_FLAVOURS:-release asan tsan}
label_args=()
[ -n "${ICH_TEST_LABEL:-}" ] && label_args=(-L "$ICH_TEST_LABEL")
status=0
for f in $flavours; do
  echo "==== $f build"
  start=$SECONDS
  scripts/build.sh "$f"
  dir=build
  [ "$f" != release ] && dir=build-$f
  echo "==== $f tests"
  if ! ctest --test-dir "$dir" --output-on-failure -j "$(nproc)" "${label_args[@]}"; then
    status=1
  fi
  echo "==== $f: $((SECONDS - start)) s"
done
exit $status
