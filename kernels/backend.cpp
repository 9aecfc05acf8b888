#include "kernels/backend.h"

#include <map>
#include <mutex>

#include "core/error.h"
#include "kernels/backend_factories.h"

namespace ich {

namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::pair<int, int>, std::unique_ptr<Backend>> backends;
};

Registry& registry() {
  static Registry r;
  return r;
}

std::unique_ptr<Backend> create(const Device& d) {
  switch (d.kind) {
    case DeviceKind::cpu:
      return make_cpu_backend();
    case DeviceKind::cuda_emu:
#ifdef ICH_HAVE_CUDA_EMU
      return make_cuda_emu_backend();
#else
      ICH_FAIL("device cuda-emu is not in this build: configure with -DICH_CUDA_EMU=ON");
#endif
    case DeviceKind::cuda:
#ifdef ICH_HAVE_CUDA
      ICH_CHECK(d.index < cuda_device_count(),
                "device " << d.str() << " is not present: this machine has " << cuda_device_count()
                          << " usable GPU(s); use --device cpu or cuda-emu");
      return make_cuda_backend(d.index);
#else
      ICH_FAIL("device " << d.str()
                         << " is not in this build: nvcc was not found when it was configured "
                            "(-DICH_CUDA=ON needs the CUDA toolkit)");
#endif
  }
  ICH_FAIL("unknown device kind");
}

}  // namespace

Backend& backend_for(const Device& device) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const auto key = std::make_pair(static_cast<int>(device.kind), device.index);
  auto it = r.backends.find(key);
  if (it == r.backends.end()) it = r.backends.emplace(key, create(device)).first;
  return *it->second;
}

bool backend_available(const Device& device) {
  switch (device.kind) {
    case DeviceKind::cpu: return true;
    case DeviceKind::cuda_emu:
#ifdef ICH_HAVE_CUDA_EMU
      return true;
#else
      return false;
#endif
    case DeviceKind::cuda:
#ifdef ICH_HAVE_CUDA
      return device.index < cuda_device_count();
#else
      return false;
#endif
  }
  return false;
}

}  // namespace ich
