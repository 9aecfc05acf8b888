#include "engine/runtime_info.h"

#include "core/device.h"
#include "kernels/backend.h"
#include "kernels/cpu/blas_select.h"

namespace ich {

void use_fast_cpu_kernels(char** argv) {
  cpu::use_fast_blas_kernels(argv);
}

void check_backend_settings() {
  backend_for(Device::cpu());
}

std::string cpu_blas_kernels() {
  return cpu::blas_core_name();
}

}  // namespace ich
