// What the programs on top of the engine (ichseg, the benchmark harness) need from the backends
// beyond the Backend interface: the process-wide settings the backends read from the
// environment, applied and checked once at start, and the facts a run records about them.
// Programs include this header, never a backend's own (kernels/cpu, kernels/cuda).
#pragma once

#include <string>

namespace ich {

// First thing in main(): when OpenBLAS fell back to its generic kernels on a CPU with AVX2
// or AVX-512, executes the program again with the faster family chosen (the choice is made
// when the library loads; kernels/cpu/blas_select.h). Returns when nothing was to be done.
void use_fast_cpu_kernels(char** argv);

// Creates the CPU backend, which reads its settings (ICH_CONV_ALGO) and throws ich::Error on
// a bad value: a command calls this before any work, so a mistake is one line at once and not
// an error part way through.
void check_backend_settings();

// The OpenBLAS kernel family the CPU backend's GEMM runs ("SkylakeX", "Haswell", ...), as a
// run folder records it.
std::string cpu_blas_kernels();

}  // namespace ich
