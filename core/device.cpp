#include "core/device.h"

#include <cstdlib>

#include "core/error.h"

namespace ich {

std::string Device::str() const {
  switch (kind) {
    case DeviceKind::cpu: return "cpu";
    case DeviceKind::cuda: return "cuda:" + std::to_string(index);
    case DeviceKind::cuda_emu: return "cuda-emu";
  }
  return "?";
}

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda-emu" || s == "cuda_emu") return cuda_emu();
  if (s == "cuda") return cuda(0);
  if (s.rfind("cuda:", 0) == 0) {
    const std::string idx = s.substr(5);
    char* end = nullptr;
    const long v = std::strtol(idx.c_str(), &end, 10);
    ICH_CHECK(!idx.empty() && end && *end == '\0' && v >= 0 && v < 1024,
              "device '" << s << "': expected cuda:N with N a GPU index");
    return cuda(static_cast<int>(v));
  }
  ICH_FAIL("unknown device '" << s << "': expected cpu, cuda, cuda:N or cuda-emu");
}

}  // namespace ich
