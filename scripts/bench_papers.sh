#!/usr/bin/env bash
# The source papers' measurements (docs/BENCHMARKS.md), one command each: builds ichseg and
# runs `ichseg bench MODE`, which writes MODE.csv, MODE.md and MODE.svg.
#   scripts/bench_papers.sh epoch|sweep|threads|allocator|all [--quick] [more ichseg bench flags]
# Environment: BUILD_DIR (default build), OUT (default bench-results), ICH_CUDA=OFF to skip
# nvcc when building (cuda rows then say "not measured").
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ]; then
  echo "usage: scripts/bench_papers.sh epoch|sweep|threads|allocator|all [--quick] [flags]" >&2
  exit 2
fi
mode=$1
shift
case "$mode" in
  epoch | sweep | threads | allocator | all) ;;
  *) echo "bench_papers.sh: unknown mode '$mode' (epoch, sweep, threads, allocator, all)" >&2; exit 2 ;;
esac

build=${BUILD_DIR:-build}
out=${OUT:-bench-results}
cmake_flags=()  # the build type of scripts/build.sh (RelWithDebInfo: -O2 -g)
[ -n "${ICH_CUDA:-}" ] && cmake_flags+=(-DICH_CUDA="$ICH_CUDA")
cmake -S . -B "$build" -G Ninja ${cmake_flags[@]+"${cmake_flags[@]}"} >/dev/null
cmake --build "$build" --target ichseg -j "$(nproc)"

# Idle OpenMP workers sleep: on a shared machine spinning ones starve the working thread.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
echo "==== $(date -u '+%F %T UTC'), load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
"$build/apps/ichseg" bench "$mode" --out "$out" "$@"
echo "==== $(date -u '+%F %T UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
