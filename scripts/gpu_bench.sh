#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds the release flavour with the cuda backend, runs
# the parity suite on the GPU (cuda and cuda-emu against cpu), then every benchmark of the
# CUDA backend next to the CPU's, and writes a markdown table.
#   scripts/gpu_bench.sh      -> build-gpu-bench/results/gpu_bench.md (+ .json, ptxas.txt, parity.log)
#   ICH_BENCH_FILTER='cuda_gemm' scripts/gpu_bench.sh   only some cases
#   ICH_BENCH_MIN_TIME=0.5 scripts/gpu_bench.sh          longer runs per case (seconds)
#   ICH_SKIP_PARITY=1 scripts/gpu_bench.sh               benchmarks only
#   ICH_SKIP_PAPERS=1 scripts/gpu_bench.sh               without the papers' measurements
#   ICH_PAPERS_FLAGS='' scripts/gpu_bench.sh             the papers' full grids (default --quick)
set -euo pipefail
cd "$(dirname "$0")/.."

out=${ICH_BENCH_OUT:-build-gpu-bench/results}
filter=${ICH_BENCH_FILTER:-'cuda_|cpu_'}
min_time=${ICH_BENCH_MIN_TIME:-0.2}
mkdir -p "$out"

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_bench.sh: no NVIDIA GPU is visible (nvidia-smi -L failed); run it on a GPU machine" >&2
  exit 2
fi
gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)
echo "==== GPU: $gpu"

echo "==== build (release, cuda + cuda-emu)"
# A build folder of its own, built from scratch, so that ptxas's report (registers, shared
# memory, spills of every kernel) is in the log and kept with the results.
cmake -S . -B build-gpu-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DICH_CUDA=ON >/dev/null
cmake --build build-gpu-bench -j "$(nproc)" 2>&1 | tee "$out/build.log"
grep -E "Compiling entry function|Function properties|Used [0-9]+ registers|spill" \
  "$out/build.log" >"$out/ptxas.txt" || echo "(no ptxas lines: the cuda backend was already built)" >"$out/ptxas.txt"

if [ -z "${ICH_SKIP_PARITY:-}" ]; then
  echo "==== parity (cuda:0 and cuda-emu against cpu)"
  ctest --test-dir build-gpu-bench -L parity --output-on-failure -j 4 | tee "$out/parity.log"
fi

echo "==== benchmarks ($filter)"
build-gpu-bench/bench/ich_bench --benchmark_filter="$filter" --benchmark_min_time="$min_time" \
  --benchmark_out="$out/gpu_bench.json" --benchmark_out_format=json

python3 - "$out/gpu_bench.json" "$gpu" >"$out/gpu_bench.md" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
print(f"# ichseg benchmarks\n\nGPU: {sys.argv[2]}  \nhost: {data['context'].get('host_name', '?')}, "
      f"{data['context'].get('num_cpus', '?')} CPUs, {data['context'].get('date', '')}\n")
print("| case | time | bytes/s | GFLOP/s | other |")
print("| --- | ---: | ---: | ---: | --- |")
def rate(v):
    for unit in ["", "K", "M", "G", "T"]:
        if abs(v) < 1000: return f"{v:.1f} {unit}"
        v /= 1000
    return f"{v:.1f} P"
for b in data["benchmarks"]:
    if b.get("error_occurred"):
        print(f"| {b['name']} | skipped: {b.get('error_message', '')} | | | |")
        continue
    bps = rate(b["bytes_per_second"]) + "B/s" if "bytes_per_second" in b else ""
    gf = f"{b['GFLOP/s']:.1f}" if "GFLOP/s" in b else ""
    other = ", ".join(f"{k}={b[k]:.0f}" for k in ("cudaMalloc_calls", "cache_hits") if k in b)
    print(f"| {b['name']} | {b['real_time']:.1f} {b['time_unit']} | {bps} | {gf} | {other} |")
PY

if [ -z "${ICH_SKIP_PAPERS:-}" ]; then
  # The papers' measurements (docs/BENCHMARKS.md) with their GPU rows: epoch, sweep, threads,
  # allocator (+ our convolution vs cuDNN, our SGEMM vs cuBLAS). The sweep skips what would
  # not fit in 90% of the GPU's memory.
  gpu_gib=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1 |
    awk '{printf "%.1f", $1 * 0.9 / 1024}')
  echo "==== the papers' measurements (ichseg bench all ${ICH_PAPERS_FLAGS---quick})"
  OMP_WAIT_POLICY=passive build-gpu-bench/apps/ichseg bench all --out "$out/papers" \
    --mem-limit-gb "$gpu_gib" ${ICH_PAPERS_FLAGS---quick} | tee "$out/papers.log"
  cat "$out"/papers/{epoch,sweep,threads,allocator}.md >>"$out/gpu_bench.md"
fi
echo "==== wrote $out/gpu_bench.md, $out/gpu_bench.json, $out/ptxas.txt"
