#!/usr/bin/env bash
# The GPU bundle's one command: scripts/gpu_bundle.sh copies this file into gpu-bundle/ as
# run.sh, beside the binaries. On a GPU machine that has none of our packages (nvcc, Python
# and PyTorch with its nvidia-* wheels are enough) it runs, stage after stage:
#   environment  CPU, glibc, where cuBLAS and cuDNN were found, every binary's libraries
#   gpu          nvidia-smi, and what the CUDA runtime in our binaries sees (ich_cuda_probe)
#   parity       test_parity: every primitive on cuda:0 and cuda-emu against the CPU reference
#   kernels      every CUDA primitive's benchmark (ich_bench BM_cuda_*): GB/s or GFLOP/s
#   unet-gpu     the U-Net step (width 64, batch 4 and 32, 1x160x160) and inference on cuda
#   pytorch      the same model in PyTorch on the same GPU (bench/unet_pytorch_cuda.py)
#   unet-cpu     the same step and inference on the CPU backend (for the speedup rows)
#   allocator    `ichseg bench allocator` on cuda: caching allocator on vs off, our
#                convolution and SGEMM vs cuDNN and cuBLAS
#   epoch        `ichseg bench epoch` on cpu and cuda: the CUDA paper's time per epoch
#   train        synth -> prepare -> train -> eval on cuda (a short run), its Dice
# Each stage is timed and limited; when the budget is spent the remaining stages are
# skipped and say so, so that the results always come back. Without a GPU the GPU stages
# say "no GPU" and the others run. docs/CUDA.md says what every row means.
#
#   run.sh [OUT_DIR]    results in OUT_DIR (default $OUT, else ./bundle-results):
#                       bundle_results.md (one table), bundle_results.json, bundle_log.txt
#   run.sh --ldd        only the library check (non-zero when a library is missing or
#                       resolves outside the bundle, CUDA's excepted)
# Exit status: 0; 1 when parity failed (or did not run although asked for); 2 when another
# stage failed or timed out.
#
# Environment:
#   ICH_BUNDLE_BUDGET_S=480        seconds for all stages (then the rest are skipped)
#   ICH_BUNDLE_STAGES="parity ..." run only these stages (environment and gpu always run)
#   ICH_CUDA_LIBS=DIR[:DIR...]     where libcublas.so.13 / libcudnn.so.9 are, instead of the
#                                  search (the PyTorch venv's nvidia/*/lib, /usr/local/cuda)
#   ICH_PEAK_GBPS, ICH_PEAK_GFLOPS the peaks the fractions are taken of (default: the H200's
#                                  4800 GB/s HBM3e and 66900 GFLOP/s FP32; on another GPU the
#                                  probe's figures from its clocks)
#   ICH_BENCH_MIN_TIME=0.1         Google Benchmark --benchmark_min_time of the kernel cases
#   ICH_UNET_MIN_TIME=1            the same for the U-Net cases on cuda (0.5 on the CPU)
#   ICH_PARITY_FILTER=SPEC         a Catch2 test spec for test_parity (default: every test)
#   ICH_TRAIN_EPOCHS=16            epochs of the train stage
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
start_ns=$(date +%s%N)
budget=${ICH_BUNDLE_BUDGET_S:-480}
cuda_re='^lib(cuda|cudart|cublas|cublasLt|cudnn[a-z_]*|nccl)\.so'
runtime_re='^(linux-vdso|libc|libm|libstdc\+\+|libgcc_s|ld-linux-x86-64|libpthread|libdl|librt)\.so'
binaries=(ichseg ich_bench test_parity ich_cuda_probe)

# ---- where the CUDA libraries are

cuda_dirs=()
find_cuda_libs() {
  cuda_dirs=()
  local candidates=()
  if [ -n "${ICH_CUDA_LIBS+x}" ]; then
    IFS=: read -ra candidates <<<"$ICH_CUDA_LIBS"
  else
    # The wheels PyTorch loads its CUDA libraries from (nvidia/cu13/lib, nvidia/cudnn/lib,
    # ...): first through the nvidia namespace package, then any site-packages folder.
    local py d
    for py in python3 /opt/torch/.venv/bin/python3; do
      command -v "$py" >/dev/null 2>&1 || continue
      while read -r d; do
        [ -n "$d" ] && candidates+=("$d"/*/lib)
      done < <("$py" -c 'import nvidia, sys; print("\n".join(nvidia.__path__))' 2>/dev/null
        "$py" -c 'import site, sys; print("\n".join(p + "/nvidia" for p in site.getsitepackages()))' 2>/dev/null)
    done
    candidates+=(/usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib)
  fi
  local d seen=":"
  for d in "${candidates[@]}"; do
    [ -d "$d" ] || continue
    d=$(cd "$d" && pwd -P)
    [[ $seen == *":$d:"* ]] && continue
    seen="$seen$d:"
    compgen -G "$d/lib*.so*" >/dev/null && cuda_dirs+=("$d")
  done
  # The driver's libcuda.so.1 is normally known to the loader; where it is not, its usual
  # folders.
  if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
    for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64; do
      [ -e "$d/libcuda.so.1" ] && cuda_dirs+=("$d")
    done
  fi
  local IFS=:
  export LD_LIBRARY_PATH="${cuda_dirs[*]}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

# Where every library of every binary resolves. Prints one line per library; returns 1 when
# a library is missing (CUDA's excepted when allow_cuda_missing=1) or resolves outside the
# bundle although it is neither the C/C++ runtime nor a CUDA library.
check_libs() {
  local allow_cuda_missing=$1 bad=0 b line name path
  for b in "${binaries[@]}"; do
    if [ ! -x "$here/$b" ]; then
      echo "  $b: missing from the bundle"
      bad=1
      continue
    fi
    while read -r line; do
      name=${line%% *}
      if [[ $line == *"not found"* ]]; then
        if [[ $name =~ $cuda_re ]] && [ "$allow_cuda_missing" = 1 ]; then
          echo "  $b: $name not found here (a CUDA library: found on the GPU machine by run.sh)"
        elif [[ $name =~ $cuda_re ]]; then
          echo "  $b: MISSING $name (a CUDA library; searched: ${cuda_dirs[*]:-nothing}; set ICH_CUDA_LIBS)"
          bad=1
        else
          echo "  $b: MISSING $line"
          bad=1
        fi
        continue
      fi
      [[ $line == *"=>"* ]] || continue
      path=$(awk '{print $3}' <<<"$line")
      if [[ $path == "$here/lib/"* ]]; then
        echo "  $b: $name bundled"
      elif [[ $name =~ $runtime_re ]]; then
        echo "  $b: $name from the system ($path)"
      elif [[ $name =~ $cuda_re ]]; then
        echo "  $b: $name CUDA, from $path"
      else
        echo "  $b: OUTSIDE THE BUNDLE $name => $path (it would be missing on the GPU machine)"
        bad=1
      fi
    done < <(ldd "$here/$b" 2>&1 | sed 's/^[[:space:]]*//')
  done
  return $bad
}

if [ "${1:-}" = "--ldd" ]; then
  [ "${ICH_CUDA_LIBS:-}" = /nonexistent ] || find_cuda_libs
  echo "libraries of the bundle's binaries (LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-})"
  if check_libs "$([ "${ICH_CUDA_LIBS:-}" = /nonexistent ] && echo 1 || echo 0)"; then
    echo "library check: every library resolves"
    exit 0
  fi
  echo "library check: FAILED (lines in capitals above)" >&2
  exit 1
fi

# ---- results folder and the stage runner

out_dir=${1:-${OUT:-$PWD/bundle-results}}
mkdir -p "$out_dir" || { echo "run.sh: cannot create $out_dir" >&2; exit 2; }
out_dir=$(cd "$out_dir" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log=$out_dir/bundle_log.txt
: >"$log"
stages_tsv=$work/stages.tsv
: >"$stages_tsv"
have_gpu=0
no_gpu_reason="not probed"
parity_state=not-run

elapsed_s() { echo $((($(date +%s%N) - start_ns) / 1000000000)); }
say() { echo "$*" | tee -a "$log"; }

report() {
  python3 "$here/report.py" --work "$work" --out "$out_dir" --manifest "$here/MANIFEST.txt" \
    --budget "$budget" >>"$log" 2>&1 ||
    echo "run.sh: report.py failed (see $log)" >&2
}

wanted() {
  [ -z "${ICH_BUNDLE_STAGES:-}" ] && return 0
  [[ " $ICH_BUNDLE_STAGES " == *" $1 "* ]]
}

# limit CMD...: runs CMD with what is left of the stage's time (exit 124 when it runs out).
limit() {
  local left=$((stage_deadline - $(elapsed_s)))
  [ "$left" -lt 1 ] && return 124
  timeout --kill-after=10 "$left" "$@"
}

# run_stage NAME CAP_S NEEDS FUNCTION: NEEDS is gpu (skipped with "no GPU" without one) or
# any. FUNCTION may set stage_status (default from its exit code) and stage_note.
run_stage() {
  local name=$1 cap=$2 needs=$3 fn=$4 status note t0 t1 secs rc
  if ! wanted "$name" && [ "$name" != environment ] && [ "$name" != gpu ]; then
    printf '%s\t%s\t%s\t%s\n' "$name" "skipped" "0" "not in ICH_BUNDLE_STAGES" >>"$stages_tsv"
    return
  fi
  if [ "$needs" = gpu ] && [ "$have_gpu" != 1 ]; then
    printf '%s\t%s\t%s\t%s\n' "$name" "no GPU" "0" "$no_gpu_reason" >>"$stages_tsv"
    say "==== $name: no GPU ($no_gpu_reason)"
    report
    return
  fi
  local left=$((budget - $(elapsed_s)))
  if [ "$left" -lt 5 ]; then
    printf '%s\t%s\t%s\t%s\n' "$name" "skipped" "0" \
      "the budget of $budget s (ICH_BUNDLE_BUDGET_S) was spent" >>"$stages_tsv"
    say "==== $name: skipped, the budget of $budget s is spent"
    report
    return
  fi
  [ "$cap" -gt "$left" ] && cap=$left
  stage_deadline=$(($(elapsed_s) + cap))
  stage_status="" stage_note=""
  say "==== $name (limit $cap s, $(elapsed_s) s of $budget s used)"
  t0=$(date +%s%N)
  "$fn" >>"$log" 2>&1
  rc=$?
  t1=$(date +%s%N)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1e9}')
  status=$stage_status
  if [ -z "$status" ]; then
    case $rc in
      0) status=ok ;;
      124 | 137) status="timed out" note="after $cap s (the stage's limit)" ;;
      *) status=failed ;;
    esac
  fi
  note="${stage_note:-${note:-}}"
  [ "$status" = failed ] && note="${note:+$note; }exit status $rc (see bundle_log.txt)"
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$secs" "$note" >>"$stages_tsv"
  say "==== $name: $status in $secs s${note:+ ($note)}"
  report
}

# ---- the stages

stage_environment() {
  uname -a
  grep -m1 'model name' /proc/cpuinfo
  echo "cores: $(nproc)"
  echo "glibc: $(getconf GNU_LIBC_VERSION 2>/dev/null)"
  cat "$here/MANIFEST.txt"
  {
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "cores=$(nproc)"
    echo "glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')"
    echo "cuda_dirs=${cuda_dirs[*]:-}"
  } >"$work/environment.txt"
  local missing=""
  for f in avx2 fma; do grep -qw "$f" /proc/cpuinfo || missing="$missing $f"; done
  if [ -n "$missing" ]; then
    stage_note="this CPU lacks${missing}: the binaries are built for x86-64-v3 and cannot run"
    return 1
  fi
  echo "CUDA library folders: ${cuda_dirs[*]:-none found}"
  if ! check_libs 0 | tee "$work/ldd.txt"; then
    stage_note=$(grep -E 'MISSING|OUTSIDE' "$work/ldd.txt" | sed 's/^ *//' | sort -u | head -3 |
      tr '\n' ';')
    return 1
  fi
  stage_note="CUDA libraries from: ${cuda_dirs[*]:-none}"
}

stage_gpu() {
  local smi_gpu=0
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >"$work/nvidia-smi-L.txt" 2>&1; then
    smi_gpu=1
    nvidia-smi
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit \
      --format=csv,noheader >"$work/nvidia-smi.csv" 2>&1
  else
    echo "nvidia-smi: $(command -v nvidia-smi >/dev/null && cat "$work/nvidia-smi-L.txt" || echo 'not installed')"
  fi
  limit "$here/ich_cuda_probe" >"$work/probe.txt" 2>&1
  local rc=$?
  cat "$work/probe.txt"
  if [ $rc -eq 0 ]; then
    have_gpu=1
    stage_note="$(grep -m1 '^device=0' "$work/probe.txt" | sed 's/.* name=//')"
    return 0
  fi
  no_gpu_reason=$(grep -m1 'no usable GPU' "$work/probe.txt" | sed 's/^cuda_probe: no usable GPU: //')
  [ -n "$no_gpu_reason" ] || no_gpu_reason="ich_cuda_probe exited $rc: $(tail -1 "$work/probe.txt")"
  if [ $smi_gpu = 1 ]; then
    stage_note="nvidia-smi shows a GPU but the CUDA runtime of the bundle cannot use it: $no_gpu_reason"
    no_gpu_reason="the runtime cannot use the GPU nvidia-smi shows: $no_gpu_reason"
    return 1
  fi
  stage_status="no GPU"
  stage_note=$no_gpu_reason
}

stage_parity() {
  local spec=()
  [ -n "${ICH_PARITY_FILTER:-}" ] && spec=("$ICH_PARITY_FILTER")
  parity_state=failed
  limit "$here/test_parity" "${spec[@]}" -r junit -o "$work/parity.xml"
  local rc=$?
  [ -f "$work/parity.xml" ] && grep -E '<testsuite |<failure' "$work/parity.xml" | head -40
  [ $rc -eq 0 ] && parity_state=passed
  if [ $have_gpu = 1 ]; then
    stage_note="cuda:0 and cuda-emu against cpu"
  else
    stage_note="cuda-emu against cpu only (no GPU)"
  fi
  [ -n "${ICH_PARITY_FILTER:-}" ] && stage_note="$stage_note; tests: $ICH_PARITY_FILTER"
  return $rc
}

# bench_summary FILE: sets stage_note to how many cases ran and how many stopped with an
# error (ich_bench exits 0 when cases are skipped); fails when none ran.
bench_summary() {
  local counts
  counts=$(python3 -c 'import json, sys
b = [x for x in json.load(open(sys.argv[1]))["benchmarks"] if x.get("run_type", "iteration") == "iteration"]
print(len(b), sum(1 for x in b if x.get("error_occurred")))' "$1" 2>/dev/null) || counts="0 0"
  local cases=${counts% *} errors=${counts#* }
  stage_note="$cases cases, $errors stopped with an error (their rows say why)"
  [ "$cases" -gt 0 ] && [ "$errors" -lt "$cases" ]
}

stage_kernels() {
  limit "$here/ich_bench" --benchmark_filter='^BM_cuda_' \
    --benchmark_min_time="${ICH_BENCH_MIN_TIME:-0.1}" \
    --benchmark_out="$work/kernels.json" --benchmark_out_format=json || return
  bench_summary "$work/kernels.json"
}

stage_unet_gpu() {
  limit "$here/ich_bench" --benchmark_filter='^Unet(TrainStep|Forward)/cuda/' \
    --benchmark_min_time="${ICH_UNET_MIN_TIME:-1}" \
    --benchmark_out="$work/unet_gpu.json" --benchmark_out_format=json || return
  bench_summary "$work/unet_gpu.json"
}

stage_pytorch() {
  if ! python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)'; then
    stage_status="not measured"
    stage_note="PyTorch with CUDA is not importable by python3 here"
    return 0
  fi
  PYTHONUNBUFFERED=1 limit python3 "$here/unet_pytorch_cuda.py" --out "$work/pytorch.json"
}

stage_unet_cpu() {
  OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} limit "$here/ich_bench" \
    --benchmark_filter='^Unet(TrainStep|Forward)/cpu/width:64/' \
    --benchmark_min_time="${ICH_CPU_MIN_TIME:-0.5}" \
    --benchmark_out="$work/unet_cpu.json" --benchmark_out_format=json || return
  bench_summary "$work/unet_cpu.json"
}

stage_allocator() {
  limit "$here/ichseg" bench allocator --devices cuda --width 64 --size 160 --batch 4 \
    --steps 5 --out "$work/allocator"
}

stage_epoch() {
  OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} limit "$here/ichseg" bench epoch \
    --devices cpu,cuda --out "$work/epoch"
}

stage_train() {
  local d=$work/train device=cuda
  # Without a GPU: the same commands on the CPU at a toy size, to show that the pipeline
  # (NIfTI, PNG, training, evaluation) runs from the bundle; its Dice means nothing.
  local synth=(--patients 16 --size 256 --slices 16)
  local train=(--only-hemorrhage --patch 64 --stride 64 --negatives-per-positive 0.5 --width 8 --drop-rate 0.1
    --batch 16 --loss dice --lr 5e-3 --lr-schedule cosine --epochs "${ICH_TRAIN_EPOCHS:-16}")
  if [ $have_gpu != 1 ]; then
    device=cpu
    synth=(--patients 5 --size 64 --slices 4)
    train=(--patch 32 --stride 32 --width 4 --batch 8 --loss dice --lr 5e-3 --epochs 1)
  fi
  echo "device=$device" >"$work/train.txt"
  mkdir -p "$d"
  limit "$here/ichseg" synth --out "$d/ct" --seed 1 "${synth[@]}" &&
    limit "$here/ichseg" prepare --data "$d/ct" --out "$d/prepared" &&
    OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} limit "$here/ichseg" train --data "$d/prepared" \
      --out "$d/run" --seed 1 --device "$device" "${train[@]}" &&
    limit "$here/ichseg" eval --run "$d/run" --json "$work/train_eval.json"
  local rc=$?
  [ $have_gpu != 1 ] && stage_note="no GPU: a toy run on the CPU (pipeline check; its Dice means nothing)"
  return $rc
}

find_cuda_libs
say "==== GPU bundle $(grep -m1 '^commit=' "$here/MANIFEST.txt" 2>/dev/null | cut -d= -f2) on $(uname -n); budget $budget s; results in $out_dir"
run_stage environment 30 any stage_environment
run_stage gpu 30 any stage_gpu
run_stage parity 300 any stage_parity
run_stage kernels 120 gpu stage_kernels
run_stage unet-gpu 90 gpu stage_unet_gpu
run_stage pytorch 120 gpu stage_pytorch
run_stage unet-cpu 90 any stage_unet_cpu
run_stage allocator 90 gpu stage_allocator
run_stage epoch 60 gpu stage_epoch
run_stage train 150 any stage_train
say "==== done in $(elapsed_s) s: $out_dir/bundle_results.md"
[ -f "$out_dir/bundle_results.md" ] && cat "$out_dir/bundle_results.md"

if [ "$parity_state" = failed ] || { [ "$parity_state" = not-run ] && wanted parity; }; then
  echo "run.sh: parity $parity_state" >&2
  exit 1
fi
if cut -f2 "$stages_tsv" | grep -qE '^(failed|timed out)$'; then
  echo "run.sh: a stage failed: $(awk -F'\t' '$2 == "failed" || $2 == "timed out" {printf "%s ", $1}' "$stages_tsv")" >&2
  exit 2
fi
exit 0
