#!/usr/bin/env bash
# Data-parallel training benchmark (docs/DISTRIBUTED.md), on the CPU backend with the
# distributed test driver (tests/distributed_driver, built with -DICH_MPI=ON):
#   1. throughput: images/s of synchronous training on 1 and 2 ranks (one OpenMP thread per
#      rank), and on 1 rank with 2 OpenMP threads, for the same model and per-rank batch;
#   2. curves (the distributed-training paper's figures 11-13): validation loss and Dice per
#      epoch for local (one process, batch B), sync (2 ranks x B/2) and async (parameter server
#      + 2 workers x B/2) training on the synthetic blob task, written as CSV and one SVG.
#
#   bench/bench_distributed.sh [BUILD_DIR] [OUT_DIR]      (defaults: build, bench-distributed)
# Environment: EPOCHS (default 8), THROUGHPUT_STEPS (default 10).
set -euo pipefail

build=${1:-build}
out=${2:-bench-distributed}
driver="$build/tests/ich_distributed_driver"
epochs=${EPOCHS:-8}
throughput_steps=${THROUGHPUT_STEPS:-10}
[[ -x "$driver" ]] || {
  echo "bench_distributed: $driver not found; build it with -DICH_MPI=ON:" \
    "cmake --build $build --target ich_distributed_driver" >&2
  exit 1
}
mkdir -p "$out"
# Root in containers, shared memory without ptrace-based single copy, ranks not pinned
# (they share the cores with the OpenMP threads we ask for).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# Idle OpenMP threads sleep instead of spinning: on a loaded machine spinning threads
# starve the thread that has work and a step takes many times longer.
export OMP_WAIT_POLICY=passive OPENBLAS_NUM_THREADS=1
mpi=(mpirun --oversubscribe --bind-to none)

result_field() {  # result_field NAME < output: the value of NAME=... on the result line
  awk -v key="$1" '/^result /{for (i = 1; i <= NF; ++i) {split($i, kv, "="); if (kv[1] == key) print kv[2]}}'
}

# ---- 1. throughput
model=(--width 16 --depth 3 --size 64 --batch 8 --steps "$throughput_steps" --dataset 256)
echo "ranks,omp_threads_per_rank,images,seconds,images_per_s" >"$out/throughput.csv"
for config in "1 1" "1 2" "2 1"; do
  read -r ranks threads <<<"$config"
  log="$out/throughput_np${ranks}_omp${threads}.log"
  OMP_NUM_THREADS=$threads "${mpi[@]}" -np "$ranks" "$driver" --mode sync "${model[@]}" \
    --out "$out/throughput" >"$log" 2>&1
  echo "$ranks,$threads,$(result_field images <"$log"),$(result_field seconds <"$log"),$(result_field images_per_s <"$log")" \
    >>"$out/throughput.csv"
done
echo "== throughput (width 16, depth 3, 64x64, batch 8 per rank)"
column -s, -t "$out/throughput.csv"

# ---- 2. curves: the same 256 images per epoch in every mode
export OMP_NUM_THREADS=1
data=(--width 8 --depth 2 --size 32 --dataset 256 --lr 0.003 --val-images 64)
steps_per_epoch=$((256 / 8))  # local and sync: a global batch of 8
"$driver" --mode accumulate --micro 1 --batch 8 --steps $((epochs * steps_per_epoch)) \
  --eval-every $steps_per_epoch "${data[@]}" --out "$out/local" >"$out/local.log" 2>&1
"${mpi[@]}" -np 2 "$driver" --mode sync --batch 4 --steps $((epochs * steps_per_epoch)) \
  --eval-every $steps_per_epoch "${data[@]}" --out "$out/sync" >"$out/sync.log" 2>&1
# 2 workers x batch 4, each over half of the data: 64 updates of 4 images per epoch.
"${mpi[@]}" -np 3 "$driver" --mode async --batch 4 --steps $((epochs * steps_per_epoch)) \
  --eval-every $((2 * steps_per_epoch)) "${data[@]}" --out "$out/async" >"$out/async.log" 2>&1

{
  echo "mode,epoch,train_loss,val_loss,val_dice,seconds"
  for mode in local sync async; do tail -n +2 "$out/$mode.curve.csv" | sed "s/^/$mode,/"; done
} >"$out/curves.csv"
echo "== curves (width 8, depth 2, 32x32 blobs, 256 images per epoch)"
column -s, -t "$out/curves.csv"
grep -h "^result\|^async" "$out/local.log" "$out/sync.log" "$out/async.log"

# ---- the figure: validation loss and Dice per epoch, one line per mode
awk -F, -v epochs="$epochs" '
  NR == 1 { next }
  { mode[NR] = $1; ep[NR] = $2; loss[NR] = $4; dice[NR] = $5; n = NR
    if (!(($1) in seen)) { seen[$1] = 1; order[++modes] = $1 }
    if (lmax == "" || $4 > lmax) lmax = $4; if (lmin == "" || $4 < lmin) lmin = $4 }
  function px(e) { return 60 + (e - 1) / (epochs > 1 ? epochs - 1 : 1) * 300 }
  function panel(x0, title, lo, hi, key,   i, m, path, y) {
    printf "<g transform=\"translate(%d,0)\">\n", x0
    printf "<rect x=\"60\" y=\"30\" width=\"300\" height=\"200\" fill=\"none\" stroke=\"#888\"/>\n"
    printf "<text x=\"210\" y=\"20\" text-anchor=\"middle\">%s</text>\n", title
    printf "<text x=\"55\" y=\"35\" text-anchor=\"end\">%.3f</text><text x=\"55\" y=\"232\" text-anchor=\"end\">%.3f</text>\n", hi, lo
    printf "<text x=\"60\" y=\"248\">epoch 1</text><text x=\"360\" y=\"248\" text-anchor=\"end\">%d</text>\n", epochs
    for (m = 1; m <= modes; ++m) {
      path = ""
      for (i = 2; i <= n; ++i) if (mode[i] == order[m]) {
        y = 230 - ((key == "loss" ? loss[i] : dice[i]) - lo) / (hi > lo ? hi - lo : 1) * 200
        path = path (path == "" ? "M" : " L") sprintf("%.1f %.1f", px(ep[i]), y)
      }
      printf "<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n", path, color[order[m]]
      printf "<text x=\"370\" y=\"%d\" fill=\"%s\">%s</text>\n", 40 + 16 * m, color[order[m]], order[m]
    }
    printf "</g>\n"
  }
  END {
    color["local"] = "#000000"; color["sync"] = "#1f77b4"; color["async"] = "#d62728"
    print "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"860\" height=\"260\" font-family=\"sans-serif\" font-size=\"12\">"
    panel(0, "validation loss (Dice + BCE)", lmin, lmax, "loss")
    panel(430, "validation Dice", 0, 1, "dice")
    print "</svg>"
  }' "$out/curves.csv" >"$out/curves.svg"
echo "wrote $out/throughput.csv $out/curves.csv $out/curves.svg"
