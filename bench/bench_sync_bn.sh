#!/usr/bin/env bash
# What synchronised BatchNorm costs: `mpirun -np 2 ichseg train --distributed sync` with and
# without --sync-bn, alternated REPEATS times, at two per-rank batch sizes (the all-gathers
# are per BatchNorm layer and step, so small batches show their latency most). Writes
# OUT/sync_bn.csv (every run) and OUT/sync_bn_median.csv; docs/DISTRIBUTED.md quotes them.
#
#   bench/bench_sync_bn.sh [BUILD_DIR] [OUT_DIR]     (REPEATS, EPOCHS, WIDTH, BATCHES override)
set -euo pipefail

build=${1:-build}
out=${2:-bench-sync-bn}
ichseg="$build/apps/ichseg"
repeats=${REPEATS:-3}
epochs=${EPOCHS:-2}
width=${WIDTH:-16}
batches=${BATCHES:-"8 2"}
[[ -x "$ichseg" ]] || {
  echo "bench_sync_bn: $ichseg not found; build it: cmake --build $build --target ichseg" >&2
  exit 1
}
rm -rf "$out"
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive OPENBLAS_NUM_THREADS=1
mpi=(mpirun --oversubscribe --bind-to none -np 2)

# The data of bench_distributed.sh: 60 training slices with hemorrhage, 64x64.
"$ichseg" synth --out "$out/ct" --patients 12 --size 64 --slices 12 --healthy-fraction 0 \
  --seed 3 >"$out/synth.log"
"$ichseg" prepare --data "$out/ct" --out "$out/prepared" >"$out/prepare.log"
common=(train --data "$out/prepared" --only-hemorrhage --width "$width" --loss dice --lr 0.01
  --drop-rate 0.1 --seed 1 --val-samples 0 --epochs "$epochs" --distributed sync)

echo "repeat,batch_per_rank,sync_bn,images_per_s,load_1min" >"$out/sync_bn.csv"
for repeat in $(seq "$repeats"); do for batch in $batches; do for sync_bn in 0 1; do
  run="$out/b${batch}_syncbn${sync_bn}_$repeat"
  flag=--no-sync-bn
  [[ $sync_bn == 1 ]] && flag=--sync-bn
  "${mpi[@]}" "$ichseg" "${common[@]}" --out "$run" --batch "$batch" "$flag" >"$run.log" 2>&1
  ips=$(awk -F, 'NR > 1 { s += $8; n += 1 } END { printf "%.2f", s / n }' "$run/log.csv")
  echo "$repeat,$batch,$sync_bn,$ips,$(cut -d' ' -f1 /proc/loadavg)" >>"$out/sync_bn.csv"
done; done; done
{
  echo "batch_per_rank,sync_bn,runs,median_images_per_s,min,max"
  for batch in $batches; do for sync_bn in 0 1; do
    awk -F, -v b="$batch" -v s="$sync_bn" 'NR > 1 && $2 == b && $3 == s { print $4 }' \
      "$out/sync_bn.csv" | sort -g | awk -v b="$batch" -v s="$sync_bn" '
        { v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          printf "%s,%s,%d,%.2f,%.2f,%.2f\n", b, s, NR, m, v[1], v[NR] }'
  done; done
} >"$out/sync_bn_median.csv"
column -s, -t "$out/sync_bn.csv"
column -s, -t "$out/sync_bn_median.csv"
