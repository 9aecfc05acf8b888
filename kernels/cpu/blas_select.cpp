#include "kernels/cpu/blas_select.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

extern "C" char* openblas_get_corename(void);

namespace ich::cpu {

namespace {

constexpr const char* kMarker = "ICH_BLAS_REEXECUTED";

bool generic_core(const std::string& name) {
  // The families OpenBLAS falls back to when it does not know the CPU (lower case in some
  // versions, capitalised in others).
  for (const char* generic : {"prescott", "nehalem", "core2", "katmai", "unknown"})
    if (strcasecmp(name.c_str(), generic) == 0) return true;
  return false;
}

}  // namespace

std::string blas_core_name() {
  const char* name = openblas_get_corename();
  return name != nullptr ? name : "unknown";
}

std::string better_blas_core() {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return "";
  const char* automatic = std::getenv("ICH_BLAS_AUTO");
  if (automatic != nullptr && std::strcmp(automatic, "0") == 0) return "";
  if (!generic_core(blas_core_name())) return "";
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return "";
}

void use_fast_blas_kernels(char** argv) {
  if (std::getenv(kMarker) != nullptr) return;
  const std::string core = better_blas_core();
  if (core.empty()) return;
  setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
  setenv(kMarker, "1", 1);
  execv("/proc/self/exe", argv);
  // Not reached unless execv failed: run on with OpenBLAS's own choice.
  unsetenv("OPENBLAS_CORETYPE");
}

}  // namespace ich::cpu
