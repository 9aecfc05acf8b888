#!/usr/bin/env bash
# CTest `bundle`: the GPU bundle cannot rot while no GPU is lent.
#   tests/bundle/check_bundle.sh SOURCE_DIR WORK_DIR
# Builds the bundle with scripts/gpu_bundle.sh into WORK_DIR, copies it to a temporary
# folder outside the source and build trees and, with an empty LD_LIBRARY_PATH, from /:
#   1. `run.sh --ldd` with no CUDA folder: every library of every binary resolves into the
#      bundle or is the C/C++ runtime, except CUDA's (which the GPU machine supplies);
#   2. `run.sh OUT`: exits 0, and every stage that can run here passed (environment,
#      parity on cuda-emu against cpu, unet-cpu, train), the GPU stages saying "no GPU"
#      (or passed, on a machine with a GPU); the parity row counts every test case passed.
# ICH_BUNDLE_CHECK_PARITY (a Catch2 test spec) limits the parity stage; the default runs
# the parity tests that exercise the bundle's binaries without repeating the whole label.
set -euo pipefail
src=$(cd "$1" && pwd)
mkdir -p "$2"
work=$(cd "$2" && pwd)

echo "==== scripts/gpu_bundle.sh $work/gpu-bundle $work/build"
"$src/scripts/gpu_bundle.sh" "$work/gpu-bundle" "$work/build"

copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
cp -a "$work/gpu-bundle" "$copy/bundle"
cd /

echo "==== the copy's libraries, no CUDA folder, empty LD_LIBRARY_PATH"
LD_LIBRARY_PATH='' ICH_CUDA_LIBS=/nonexistent "$copy/bundle/run.sh" --ldd

echo "==== the copy's run.sh, empty LD_LIBRARY_PATH"
status=0
LD_LIBRARY_PATH='' ICH_CPU_MIN_TIME=0.01 ICH_BUNDLE_BUDGET_S=${ICH_BUNDLE_BUDGET_S:-1500} \
  ICH_PARITY_FILTER=${ICH_BUNDLE_CHECK_PARITY-} "$copy/bundle/run.sh" "$copy/out" || status=$?
if [ $status -ne 0 ]; then
  echo "check_bundle: run.sh exited $status; its log:" >&2
  tail -60 "$copy/out/bundle_log.txt" >&2
  exit 1
fi

python3 - "$copy/out/bundle_results.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
stages = {s["stage"]: s for s in doc["stages"]}
gpu = stages.get("gpu", {}).get("status") == "ok"
problems = []
expected = ["environment", "gpu", "parity", "kernels", "unet-gpu", "pytorch", "unet-cpu",
            "allocator", "train"]
for name in expected:
    s = stages.get(name)
    if s is None:
        problems.append(f"stage {name} missing from the results")
        continue
    cpu_side = name in ("environment", "parity", "unet-cpu", "train")
    want = ("ok",) if cpu_side else (("ok", "not measured") if gpu else ("no GPU",))
    if name == "gpu":
        want = ("ok", "no GPU")
    if s["status"] not in want:
        problems.append(f"stage {name}: {s['status']} ({s['note']}), expected {' or '.join(want)}")
par = doc.get("parity") or {}
if not par.get("test_cases") or par.get("failed"):
    problems.append(f"parity: {par}")
rows = {(r["group"], r["measurement"]) for r in doc["rows"]}
for needed in [("cpu vs gpu", "train step w64 b4 1x160x160"), ("machine", "CPU")]:
    if needed not in rows:
        problems.append(f"no row {needed}")
if problems:
    print("check_bundle: FAILED\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"check_bundle: passed: {len(stages)} stages, parity {par['test_cases']} test cases, "
      f"{len(doc['rows'])} rows")
PY
cat "$copy/out/bundle_results.md"
