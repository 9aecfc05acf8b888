#!/usr/bin/env bash
# The main job, end to end on the CPU: set up, build ichseg, synthesise a small CT-ICH
# dataset, prepare it, train the U-Net, evaluate it, and write the HTML report.
#   scripts/demo.sh                 everything in runs/demo/ (replaced on each run)
#   DEMO_DIR=/tmp/d scripts/demo.sh elsewhere
#   scripts/demo.sh --epochs 30     extra arguments go to `ichseg train`
#   ICH_BUILD_DIR=build-x scripts/demo.sh   build (only ichseg) in another folder
# docs/TRAINING.md has the figures this reaches and what each setting is for.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

scripts/setup.sh
# Only the ichseg binary: the tests and benchmarks are scripts/test.sh's business.
build=${ICH_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target ichseg -j "$(nproc)"
ichseg=$build/apps/ichseg
echo "demo: built in $((SECONDS - start)) s"

# Spinning OpenMP workers lose badly on a machine that is busy with anything else; and the
# CPU backend allocates every activation afresh, which glibc would otherwise hand back to
# the kernel (mmap/munmap and page faults cost more than the arithmetic at these sizes).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-4294967296}
export MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-4294967296}
export MALLOC_TOP_PAD_=${MALLOC_TOP_PAD_:-268435456}

dir=${DEMO_DIR:-runs/demo}
if [ -e "$dir" ] && [ ! -f "$dir/.ichseg-demo" ]; then
  echo "demo: $dir exists and is not a demo folder; set DEMO_DIR to another place" >&2
  exit 1
fi
rm -rf "$dir"
mkdir -p "$dir"
touch "$dir/.ichseg-demo"
# 16 patients of 256x256 slices: 13 to train on, 3 to validate on (patients, never slices).
$ichseg synth --out "$dir/ct" --patients 16 --size 256 --slices 16 --seed 1
$ichseg prepare --data "$dir/ct" --out "$dir/prepared"
# Slices with hemorrhage (as the seed paper), cut into 64x64 patches (as the ICH paper cuts
# 160x160 ones from 512x512), validated on whole slices; the paper's U-Net at width 8
# instead of 64, and negative Dice as the loss, so that it learns in minutes on two cores.
$ichseg train --data "$dir/prepared" --out "$dir/run" --only-hemorrhage \
  --patch 64 --stride 64 --negatives-per-positive 0.5 --width 8 --drop-rate 0.1 \
  --batch 16 --loss dice --lr 5e-3 --lr-schedule cosine --epochs 16 --seed 1 "$@"
$ichseg eval --run "$dir/run" --json "$dir/run/eval.json" --overlays 8
$ichseg report "$dir/run"
# The clinical path: a phantom patient as a DICOM series (shuffled file names, as a scanner
# exports it), listed, and segmented into a NIfTI mask with the series' geometry.
$ichseg synth --out "$dir/dicom" --patients 1 --size 256 --slices 16 --seed 2 --format dicom
$ichseg info "$dir/dicom/ct_scans/001"
$ichseg predict --run "$dir/run" "$dir/dicom/ct_scans/001" --out "$dir/dicom-pred" --overlays none
echo "demo: done in $((SECONDS - start)) s; open $dir/run/report.html"
