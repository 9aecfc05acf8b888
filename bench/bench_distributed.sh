#!/usr/bin/env bash
# Data-parallel training benchmark through `ichseg train` (docs/DISTRIBUTED.md), CPU backend,
# on a small synthetic head-CT set (ichseg synth + ichseg prepare):
#   1. throughput: training images/s (log.csv's images_per_s, mean over the epochs) of a
#      width-16 U-Net with batch 8 per rank: 1 process with 1 and with 2 OpenMP threads, and
#      `mpirun -np 2 ... --distributed sync` with 1 thread per rank; the three configurations
#      alternate, REPEATS times, and the medians are reported (throughput_median.csv);
#   2. curves (the distributed-training paper's figures 11-13): loss and Dice per epoch of
#      local (1 process, batch 8), sync (2 ranks x 4, the same global batch) and async
#      (parameter server + 2 workers x 4): curves.csv, and curves.svg drawn by
#      `ichseg report --compare` (apps/report.h).
#
#   bench/bench_distributed.sh [BUILD_DIR] [OUT_DIR]      (defaults: build, bench-distributed)
# Environment: EPOCHS (curves, default 10), THROUGHPUT_EPOCHS (default 2), REPEATS (default 3),
# PATIENTS (default 12), SIZE (default 64), SLICES (default 12), WIDTH (default 16).
# The data: slices with hemorrhage only, every synthetic patient with hemorrhage.
set -euo pipefail

build=${1:-build}
out=${2:-bench-distributed}
ichseg="$build/apps/ichseg"
epochs=${EPOCHS:-10}
repeats=${REPEATS:-3}
throughput_epochs=${THROUGHPUT_EPOCHS:-2}
width=${WIDTH:-16}
[[ -x "$ichseg" ]] || {
  echo "bench_distributed: $ichseg not found; build it (with -DICH_MPI=ON):" \
    "cmake --build $build --target ichseg" >&2
  exit 1
}
rm -rf "$out"
mkdir -p "$out"
# Root in containers, shared memory without ptrace-based single copy, ranks not pinned
# (they share the cores with the OpenMP threads we ask for).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# Idle OpenMP threads sleep instead of spinning: on a loaded machine spinning threads
# starve the thread that has work and a step takes many times longer.
export OMP_WAIT_POLICY=passive OPENBLAS_NUM_THREADS=1
mpi=(mpirun --oversubscribe --bind-to none)

"$ichseg" synth --out "$out/ct" --patients "${PATIENTS:-12}" --size "${SIZE:-64}" \
  --slices "${SLICES:-12}" --healthy-fraction 0 --seed 3 >"$out/synth.log"
"$ichseg" prepare --data "$out/ct" --out "$out/prepared" >"$out/prepare.log"
common=(train --data "$out/prepared" --only-hemorrhage --width "$width" --loss dice --lr 0.01
  --drop-rate 0.1 --seed 1 --val-samples 0)

mean_images_per_s() {  # mean of log.csv's images_per_s column
  awk -F, 'NR > 1 { s += $8; n += 1 } END { if (n) printf "%.2f", s / n }' "$1"
}

# ---- 1. throughput
echo "repeat,ranks,omp_threads_per_rank,batch_per_rank,epochs,images_per_s" >"$out/throughput.csv"
for repeat in $(seq "$repeats"); do for config in "1 1" "1 2" "2 1"; do
  read -r ranks threads <<<"$config"
  run="$out/throughput_np${ranks}_omp${threads}_$repeat"
  args=("${common[@]}" --out "$run" --batch 8 --epochs "$throughput_epochs")
  if [[ $ranks == 1 ]]; then
    OMP_NUM_THREADS=$threads "$ichseg" "${args[@]}" >"$run.log" 2>&1
  else
    OMP_NUM_THREADS=$threads "${mpi[@]}" -np "$ranks" "$ichseg" "${args[@]}" \
      --distributed sync >"$run.log" 2>&1
  fi
  echo "$repeat,$ranks,$threads,8,$throughput_epochs,$(mean_images_per_s "$run/log.csv")" \
    >>"$out/throughput.csv"
done; done
{
  echo "ranks,omp_threads_per_rank,runs,median_images_per_s,min,max"
  for config in "1 1" "1 2" "2 1"; do
    read -r ranks threads <<<"$config"
    awk -F, -v r="$ranks" -v t="$threads" 'NR > 1 && $2 == r && $3 == t { print $6 }' \
      "$out/throughput.csv" | sort -g | awk -v r="$ranks" -v t="$threads" '
        { v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          printf "%s,%s,%d,%.2f,%.2f,%.2f\n", r, t, NR, m, v[1], v[NR] }'
  done
} >"$out/throughput_median.csv"
echo "== throughput (width $width, batch 8 per rank, images/s of the training steps)"
column -s, -t "$out/throughput.csv"
column -s, -t "$out/throughput_median.csv"

# ---- 2. curves: the same training images per epoch in every mode
export OMP_NUM_THREADS=1
"$ichseg" "${common[@]}" --out "$out/local" --batch 8 --epochs "$epochs" >"$out/local.log" 2>&1
"${mpi[@]}" -np 2 "$ichseg" "${common[@]}" --out "$out/sync" --batch 4 --epochs "$epochs" \
  --distributed sync >"$out/sync.log" 2>&1
"${mpi[@]}" -np 3 "$ichseg" "${common[@]}" --out "$out/async" --batch 4 --epochs "$epochs" \
  --distributed async >"$out/async.log" 2>&1

{
  echo "mode,epoch,train_loss,val_loss,val_dice,val_jaccard,seconds,images_per_s"
  for mode in local sync async; do
    awk -F, -v mode="$mode" 'NR > 1 { print mode "," $1 "," $2 "," $3 "," $4 "," $5 "," $7 "," $8 }' \
      "$out/$mode/log.csv"
  done
} >"$out/curves.csv"
echo "== curves (width $width; local batch 8, sync 2 x 4, async 2 workers x 4)"
column -s, -t "$out/curves.csv"
grep -h "^async:" "$out/async.log" || true
"$ichseg" report --compare "local=$out/local" --compare "sync=$out/sync" \
  --compare "async=$out/async" --out "$out/curves.svg" >/dev/null
echo "wrote $out/throughput.csv $out/throughput_median.csv $out/curves.csv $out/curves.svg"
