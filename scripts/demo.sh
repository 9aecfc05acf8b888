#!/usr/bin/env bash
# Sets up, builds, and runs the main job on the built-in synthetic data.
# Until the CT pipeline's train command lands this is the engine's demo: a small
# U-Net learning a synthetic shape task on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
build/apps/ichseg demo "$@"
