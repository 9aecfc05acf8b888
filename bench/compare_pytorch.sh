#!/usr/bin/env bash
# Side by side on this machine: our U-Net training step (forward + backward + Adam) and
# inference against PyTorch's CPU build on the same model (the medicaltorch U-Net,
# bench/unet_pytorch.py), same shape (batch 4, 1x160x160; and one 1x512x512 slice), same
# number of threads, widths 64 and 16. The two sides alternate, ROUNDS times; the medians
# are reported, and the last line is
#   ratio train=X infer=Y rss=Z        (ours / PyTorch at width 64: step, inference, peak RSS)
# PyTorch is optional (Debian's python3-torch): without it the script says so and exits 0.
#
#   bench/compare_pytorch.sh [BUILD_DIR]          (default build; needs BUILD_DIR/bench/ich_bench)
#   ROUNDS=3 THREADS=2 bench/compare_pytorch.sh build
#
# Settings: each side gets OMP_NUM_THREADS=THREADS (PyTorch also torch.set_num_threads) and
# the same OPENBLAS_CORETYPE (whatever the caller exports; OpenBLAS 0.3.21 falls back to its
# slow Prescott kernels on CPUs it does not recognise, see docs/PERFORMANCE.md; PyTorch's
# convolutions are oneDNN's and do not use OpenBLAS).
# PyTorch runs with glibc told to keep freed memory (TORCH_GLIBC_TUNABLES below; its best
# setting on our VMs); ours runs with glibc defaults because its own cache keeps the memory.
set -euo pipefail

BUILD=${1:-build}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
WIDTHS=${WIDTHS:-"64 16"}
MIN_TIME=${MIN_TIME:-4}      # seconds per run of ours (Google Benchmark --benchmark_min_time)
TORCH_ITERS=${TORCH_ITERS:-4}
TORCH_GLIBC_TUNABLES=${TORCH_GLIBC_TUNABLES-glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295:glibc.malloc.top_pad=268435456}
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=$BUILD/bench/ich_bench

[ -x "$BENCH" ] || { echo "compare_pytorch: $BENCH not found; build the ich_bench target first" >&2; exit 1; }
PY=""
for cand in ${PYTHON:-} python3 /usr/bin/python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c "import torch" >/dev/null 2>&1; then PY=$cand; break; fi
done
if [ -z "$PY" ]; then
  echo "compare_pytorch: PyTorch is not importable (apt-get install python3-torch); nothing compared"
  exit 0
fi

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
RESULTS=$OUT/results.txt
: >"$RESULTS"

# ours KIND WIDTH FILTER: one process per measurement, so its peak RSS is its own.
ours() {
  local kind=$1 width=$2 filter=$3 json=$OUT/ours.json
  OMP_NUM_THREADS=$THREADS "$BENCH" --benchmark_filter="$filter" --benchmark_min_time="$MIN_TIME" \
    --benchmark_out="$json" --benchmark_out_format=json >/dev/null 2>&1 ||
    { echo "compare_pytorch: $BENCH --benchmark_filter='$filter' failed" >&2; exit 1; }
  "$PY" - "$json" "$kind" "$width" >>"$RESULTS" <<'PYEOF'
import json, sys
doc = json.load(open(sys.argv[1]))
b = doc["benchmarks"][0]
print("#core", doc["context"].get("openblas_core", "?"))
ms = b["real_time"] * {"ms": 1.0, "us": 1e-3, "ns": 1e-6, "s": 1e3}[b["time_unit"]]
print(f"ours {sys.argv[2]} {sys.argv[3]} {ms:.1f} {b.get('peak_rss_MiB', 0):.0f} {int(b.get('params', 0))}")
PYEOF
}

torch_side() {
  local kind=$1 width=$2
  OMP_NUM_THREADS=$THREADS GLIBC_TUNABLES=$TORCH_GLIBC_TUNABLES "$PY" "$HERE/unet_pytorch.py" \
    --mode "$kind" --width "$width" --threads "$THREADS" --iters "$TORCH_ITERS" |
    awk -v k="$kind" -v w="$width" '{for(i=1;i<=NF;i++){split($i,a,"="); v[a[1]]=a[2]}
      print "torch", k, w, v["median_ms"], v["peak_rss_mib"], v["params"]}' >>"$RESULTS"
}

echo "compare_pytorch: $ROUNDS rounds, $THREADS threads, widths $WIDTHS; $(uptime | sed 's/.*load/load/')"
echo "  both:    OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset (PyTorch: OpenBLAS detects the CPU; ours: ich_bench picks a vector family when OpenBLAS falls back to a generic one, printed below)}"
echo "  ours:    $BENCH, OMP_NUM_THREADS=$THREADS, ICH_CPU_CACHING=${ICH_CPU_CACHING:-1}"
echo "  pytorch: $("$PY" -c 'import torch; print(torch.__version__)'), OMP_NUM_THREADS=$THREADS, GLIBC_TUNABLES=$TORCH_GLIBC_TUNABLES"
for ((r = 1; r <= ROUNDS; r++)); do
  for w in $WIDTHS; do
    ours train "$w" "^UnetTrainStep/cpu/width:$w/real_time\$"
    torch_side train "$w"
    ours infer "$w" "^UnetForward/cpu/width:$w/slice512:0/real_time\$"
    torch_side infer "$w"
  done
  ours slice 64 '^UnetForward/cpu/width:64/slice512:1/real_time$'
  torch_side slice 64
  echo "  round $r/$ROUNDS done ($(uptime | sed 's/.*load/load/'))"
done

"$PY" - "$RESULTS" "$WIDTHS" <<'PYEOF'
import statistics, sys
lines = [l.split() for l in open(sys.argv[1]) if l.strip()]
cores = sorted({l[1] for l in lines if l[0] == "#core"})
print("OpenBLAS kernels used by ours:", ", ".join(cores))
rows = [l for l in lines if l[0] != "#core"]
def med(side, kind, width, col):
    v = [float(r[col]) for r in rows if r[0] == side and r[1] == kind and r[2] == str(width)]
    return statistics.median(v) if v else float("nan")
def params(side, width):
    v = [r[5] for r in rows if r[0] == side and r[2] == str(width) and r[1] == "train"]
    return v[0] if v else "?"
print(f"{'measurement':<26}{'ours ms':>10}{'pytorch ms':>12}{'ratio':>8}   (medians of {len([r for r in rows if r[0]=='ours' and r[1]=='slice'])} rounds)")
for w in sys.argv[2].split():
    print(f"params width {w}: ours {params('ours', w)}, pytorch {params('torch', w)}")
    for kind in ("train", "infer"):
        o, t = med("ours", kind, w, 3), med("torch", kind, w, 3)
        print(f"{kind + ' width ' + w:<26}{o:>10.1f}{t:>12.1f}{o / t:>8.2f}")
    o, t = med("ours", "train", w, 4), med("torch", "train", w, 4)
    print(f"{'peak RSS MiB train ' + w:<26}{o:>10.0f}{t:>12.0f}{o / t:>8.2f}")
o, t = med("ours", "slice", 64, 3), med("torch", "slice", 64, 3)
print(f"{'slice 512x512 width 64':<26}{o:>10.1f}{t:>12.1f}{o / t:>8.2f}")
for w in sys.argv[2].split():
    if w != "64":
        print(f"ratio width {w}: train={med('ours','train',w,3)/med('torch','train',w,3):.2f} "
              f"infer={med('ours','infer',w,3)/med('torch','infer',w,3):.2f} "
              f"rss={med('ours','train',w,4)/med('torch','train',w,4):.2f}")
w = "64" if "64" in sys.argv[2].split() else sys.argv[2].split()[0]
print(f"ratio train={med('ours','train',w,3)/med('torch','train',w,3):.2f} "
      f"infer={med('ours','infer',w,3)/med('torch','infer',w,3):.2f} "
      f"rss={med('ours','train',w,4)/med('torch','train',w,4):.2f}")
PYEOF
