// Constructors of the concrete backends, called only by the registry in
// kernels/backend.cpp. Each is defined by its own backend library.
#pragma once

#include <memory>

#include "kernels/backend.h"

namespace ich {

std::unique_ptr<Backend> make_cpu_backend();
#ifdef ICH_HAVE_CUDA_EMU
std::unique_ptr<Backend> make_cuda_emu_backend();
#endif
#ifdef ICH_HAVE_CUDA
int cuda_device_count();  // 0 when the driver or the GPU is missing; never throws
std::unique_ptr<Backend> make_cuda_backend(int index);
#endif

}  // namespace ich
