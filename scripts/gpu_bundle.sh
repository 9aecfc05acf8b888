#!/usr/bin/env bash
# Builds the GPU bundle: everything a bare GPU machine (nvcc, Python and PyTorch there; none
# of our Debian packages) needs to run parity, the kernel benchmarks and the side-by-side
# with PyTorch as one command, `gpu-bundle/run.sh` (docs/CUDA.md, "The GPU bundle").
#
#   scripts/gpu_bundle.sh                  -> gpu-bundle/ (build folder build-bundle/)
#   scripts/gpu_bundle.sh OUT_DIR BUILD_DIR   elsewhere (the CTest check `bundle` does this)
#
# What it holds: ichseg, ich_bench, test_parity and ich_cuda_probe (release, nvcc for sm_80
# and sm_90, CUDA runtime linked statically, stripped), and in lib/ every shared library
# they need that is neither the C/C++ runtime nor a CUDA library: OpenBLAS (a trimmed
# build, below), NIfTI, znz, zlib, fmt, boost.context, Google Benchmark, GNU OpenMP. The
# binaries find lib/ through their rpath ($ORIGIN/lib). cuBLAS (and cuDNN, opened with
# dlopen for the peer benchmarks only) are found on the GPU machine by run.sh.
#
# CPU code is compiled for x86-64-v3 (AVX2, FMA; Haswell and later, every AMD Zen), not for
# this machine's CPU: the GPU machine's processor is another one, and AVX-512 code would stop
# every stage with an illegal instruction on a host without it.
#
# OpenBLAS: Debian's libopenblas.so.0 is 36.5 MB, because it carries kernels for 24 x86
# families. The bundle's lib/libopenblas.so.0 is linked here from Debian's static
# libopenblas.a with only the entry points the engine calls and the kernels of 3 families:
# Haswell (AVX2; Zen uses it), SkylakeX (AVX-512; Cooper Lake and Sapphire Rapids use it)
# and Prescott (SSE3, the generic fallback that kernels/cpu/blas_select.h replaces). The
# other families' tables are aliased to those (--defsym), so the run-time CPU detection is
# OpenBLAS's own. About 6 MB.
#
# The total is printed and must stay under ICH_BUNDLE_MAX_MIB (40) MiB. Finally it checks
# with `run.sh --ldd` that every library resolves into the bundle except the CUDA ones.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

out=${1:-gpu-bundle}
build=${2:-build-bundle}
max_mib=${ICH_BUNDLE_MAX_MIB:-40}
cuda_lib=${ICH_BUNDLE_CUDA_LIB:-/usr/local/cuda/lib64}
start=$SECONDS

nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
[ -x "$nvcc" ] ||
  { echo "gpu_bundle.sh: nvcc not found (CUDA toolkit expected at /usr/local/cuda)" >&2; exit 1; }
for tool in strip ldd objdump; do
  command -v "$tool" >/dev/null || { echo "gpu_bundle.sh: $tool not found" >&2; exit 1; }
done

echo "==== configure $build (release, nvcc sm_80 + sm_90, x86-64-v3, static CUDA runtime, no MPI)"
# -O2 as the release flavour (RelWithDebInfo) without its -g: the same code, smaller objects.
# The rpath is $ORIGIN/lib from the start (no build-tree entries), as DT_RPATH so that it
# also applies to the libraries' own dependencies (libnifti2 -> libznz).
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" -DCMAKE_CUDA_FLAGS_RELEASE="-O2 -DNDEBUG" \
  -DCMAKE_CXX_FLAGS="-march=x86-64-v3" -DICH_NATIVE=OFF -DICH_CUDA=ON -DICH_CUDA_EMU=ON \
  -DICH_MPI=OFF -DICH_BENCH=ON -DICH_TESTS=ON -DICH_CUDART_STATIC=ON \
  -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON -DCMAKE_INSTALL_RPATH='$ORIGIN/lib' \
  -DCMAKE_EXE_LINKER_FLAGS="-Wl,--disable-new-dtags" >/dev/null

echo "==== build ichseg ich_bench test_parity ich_cuda_probe"
# test_parity lists its tests after the link (Catch2 discovery): it must find cuBLAS then.
LD_LIBRARY_PATH="$cuda_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  cmake --build "$build" -j "$(nproc)" --target ichseg ich_bench test_parity ich_cuda_probe
build_s=$((SECONDS - start))

echo "==== assemble $out"
stage=$out.tmp
rm -rf "$stage"
mkdir -p "$stage/lib"
for b in apps/ichseg bench/ich_bench tests/test_parity tests/bundle/ich_cuda_probe; do
  strip -o "$stage/$(basename "$b")" "$build/$b"
done
cp scripts/gpu_run.sh "$stage/run.sh"
cp scripts/gpu_bundle_report.py "$stage/report.py"
cp bench/unet_pytorch.py bench/unet_pytorch_cuda.py "$stage/"
chmod +x "$stage/run.sh"

# The trimmed OpenBLAS (see the top of this file).
blas_a=$(pkg-config --variable=libdir openblas)/libopenblas.a
[ -f "$blas_a" ] || { echo "gpu_bundle.sh: $blas_a not found (libopenblas-dev)" >&2; exit 1; }
defsyms=()
for family in ATOM BARCELONA BOBCAT BULLDOZER CORE2 DUNNINGTON NANO NEHALEM OPTERON PENRYN \
  PILEDRIVER SANDYBRIDGE STEAMROLLER; do  # no AVX2: cannot run these binaries anyway
  defsyms+=("-Wl,--defsym=gotoblas_$family=gotoblas_PRESCOTT")
done
for family in ZEN EXCAVATOR; do  # AVX2 + FMA
  defsyms+=("-Wl,--defsym=gotoblas_$family=gotoblas_HASWELL")
done
defsyms+=("-Wl,--defsym=gotoblas_COOPERLAKE=gotoblas_SKYLAKEX")
gcc -shared -o "$stage/lib/libopenblas.so.0" -Wl,-soname,libopenblas.so.0 -Wl,--gc-sections -s \
  -Wl,-u,cblas_sgemm -Wl,-u,openblas_set_num_threads -Wl,-u,openblas_get_num_threads \
  -Wl,-u,openblas_get_corename "${defsyms[@]}" "$blas_a" -lpthread -lm

# Every other library the binaries load that is neither the C/C++ runtime nor CUDA's, found
# with ldd (which follows the binaries' rpath into lib/ where a library is already there).
runtime_re='^(linux-vdso|libc|libm|libstdc\+\+|libgcc_s|ld-linux-x86-64|libpthread|libdl|librt)\.so'
cuda_re='^lib(cuda|cudart|cublas|cublasLt|cudnn[a-z_]*|nccl)\.so'
for _ in 1 2; do
  for b in ichseg ich_bench test_parity ich_cuda_probe; do
    LD_LIBRARY_PATH="$cuda_lib" ldd "$stage/$b" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
  done | sort -u | while read -r name path; do
    [[ $name =~ $runtime_re || $name =~ $cuda_re ]] && continue
    [ -e "$stage/lib/$name" ] && continue
    cp -L "$path" "$stage/lib/$name"
    strip --strip-unneeded "$stage/lib/$name"
  done
done

# What the binaries need from the machine they run on.
glibc=$(for b in "$stage"/ich*  "$stage"/test_parity; do objdump -T "$b"; done |
  grep -o 'GLIBC_[0-9.]*' | sort -t. -k2,2n -k3,3n -u | tail -1)
glibcxx=$(for b in "$stage"/ich* "$stage"/test_parity "$stage"/lib/*; do objdump -T "$b"; done |
  grep -o 'GLIBCXX_[0-9.]*' | sort -t. -k2,2n -k3,3n -u | tail -1)
cuda_needed=$(for b in "$stage"/ich* "$stage"/test_parity; do
  objdump -p "$b" | awk '$1 == "NEEDED" {print $2}'; done | grep -E "$cuda_re" | sort -u |
  tr '\n' ' ')
cudnn_major=$(awk '/#define CUDNN_MAJOR/ {print $3}' /usr/local/cuda/include/cudnn_version.h 2>/dev/null ||
  true)
{
  echo "commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(
    git -C "$root" diff --quiet HEAD 2>/dev/null || echo '+changes')"
  echo "built=$(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -n)"
  echo "nvcc=$("$nvcc" --version | awk '/release/ {print $5 $6}')"
  echo "cuda_arch=sm_80,sm_90 cpu_arch=x86-64-v3"
  echo "needs_glibc=$glibc needs_glibcxx=$glibcxx"
  echo "needs_cuda_libs=${cuda_needed% }"
  echo "dlopens=libcudnn.so.${cudnn_major:-9} (cuDNN peer only)"
  echo "bundled_libs=$(cd "$stage/lib" && ls | tr '\n' ' ')"
} >"$stage/MANIFEST.txt"

rm -rf "$out"
mv "$stage" "$out"

bytes=$(du -sb "$out" | cut -f1)
mib=$(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1048576}')
echo "==== $out: $mib MiB (limit $max_mib MiB), built in ${build_s} s, $((SECONDS - start)) s in all"
find "$out" -type f -printf '%s %P\n' | sort -n | awk '{printf "  %8.2f MiB  %s\n", $1 / 1048576, $2}'
if [ "$bytes" -gt $((max_mib * 1048576)) ]; then
  echo "gpu_bundle.sh: the bundle is $mib MiB, over the limit of $max_mib MiB" >&2
  exit 1
fi

echo "==== library check (run.sh --ldd, an empty LD_LIBRARY_PATH)"
LD_LIBRARY_PATH='' ICH_CUDA_LIBS=/nonexistent "$out/run.sh" --ldd
