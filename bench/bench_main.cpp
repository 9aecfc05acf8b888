// The one main() of ich_bench; every bench/*.cpp adds its cases with BENCHMARK(...).
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
