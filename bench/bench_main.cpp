// The one main() of ich_bench; every bench/*.cpp adds its cases with BENCHMARK(...).
// Before anything else it makes OpenBLAS use the CPU's vector kernels when it fell back to
// generic ones (kernels/cpu/blas_select.h); the context lines name the family in use.
#include <benchmark/benchmark.h>

#include <exception>
#include <iostream>

#include "kernels/cpu/blas_select.h"
#include "kernels/cpu/conv_algo.h"

int main(int argc, char** argv) {
  ich::cpu::use_fast_blas_kernels(argv);
  benchmark::AddCustomContext("openblas_core", ich::cpu::blas_core_name());
  try {
    // ICH_CONV_ALGO: the CPU backend's 3x3 convolutions (the Unet* cases follow it).
    benchmark::AddCustomContext("conv_algo", ich::cpu::conv_algo_name(ich::cpu::conv_algo()));
  } catch (const std::exception& e) {
    std::cerr << "ich_bench: " << e.what() << "\n";
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
