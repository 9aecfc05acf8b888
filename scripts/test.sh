#!/usr/bin/env bash
# Sets up, builds and runs every test: the release build's whole suite (cpu and
# cuda-emu, and cuda when a GPU is present), the same suite under ASan + UBSan,
# and the cuda-emu race tests under ThreadSanitizer.
#   ICH_TEST_FLAVOURS="release"   run only some of release, asan, tsan
#   ICH_TEST_LABEL=parity         run only one CTest label in each flavour
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

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
