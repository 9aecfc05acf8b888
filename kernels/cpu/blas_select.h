// OpenBLAS picks its kernels for the CPU it finds when the library loads. Debian's
// OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not recognise some virtual CPUs (seen: an Intel Xeon
// with AVX-512 whose model the VM hides) and falls back to its SSE3 "Prescott" kernels,
// which run sgemm 2.5-4x slower than its AVX2 or AVX-512 ones on the same machine
// (docs/PERFORMANCE.md). The choice is made before main() and can only be changed by the
// environment variable OPENBLAS_CORETYPE, so the programs that train and benchmark
// (ichseg, ich_bench) call use_fast_blas_kernels() first thing: when OpenBLAS fell back to
// a generic core although the CPU has AVX2+FMA or AVX-512, it sets OPENBLAS_CORETYPE to
// Haswell or SkylakeX and executes the program again with the same arguments.
//
// A user's OPENBLAS_CORETYPE is always left as it is; ICH_BLAS_AUTO=0 turns this off.
#pragma once

#include <string>

namespace ich::cpu {

// The OpenBLAS kernel family in use ("SkylakeX", "Haswell", "Prescott", ...).
std::string blas_core_name();

// The family OpenBLAS should use on this CPU when it fell back to a generic one, or "" when
// its own choice stands (a recognised core, OPENBLAS_CORETYPE set, ICH_BLAS_AUTO=0, or a CPU
// without AVX2+FMA).
std::string better_blas_core();

// If better_blas_core() is not empty: sets OPENBLAS_CORETYPE and re-executes
// /proc/self/exe with argv (once; a marker variable stops a second round). Returns only
// when nothing was to be done or the re-execution failed (then OpenBLAS's choice stands).
void use_fast_blas_kernels(char** argv);

}  // namespace ich::cpu
