#!/usr/bin/env bash
# Installs every Debian package ichseg needs to build, test and benchmark.
# Idempotent and quiet when everything is already there. The CUDA toolkit
# (nvcc, cuBLAS, cuDNN, NCCL) is expected at /usr/local/cuda; without it the
# build leaves out the nvcc-compiled backend and keeps cpu and cuda-emu.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libnifti2-dev libstb-dev zlib1g-dev
  libgdcm-dev
  dcmtk libgdcm-tools
  catch2 libbenchmark-dev
  libopenblas-dev
  libopenmpi-dev openmpi-bin
  libboost-context-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev
  clang libclang-rt-14-dev
  python3
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
