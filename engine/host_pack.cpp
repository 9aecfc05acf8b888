#include "engine/host_pack.h"

#include <algorithm>

#include "core/error.h"

namespace ich {

size_t total_bytes(const NamedTensors& tensors) {
  size_t bytes = 0;
  for (const auto& [name, t] : tensors) bytes += t.nbytes();
  return bytes;
}

int64_t total_numel(const std::vector<Tensor>& tensors) {
  int64_t n = 0;
  for (const Tensor& t : tensors) n += t.numel();
  return n;
}

uint8_t* pack_tensors(const NamedTensors& tensors, uint8_t* dst) {
  for (const auto& [name, t] : tensors) {
    t.backend().copy_to_host(dst, t.raw_data(), t.nbytes());
    dst += t.nbytes();
  }
  return dst;
}

const uint8_t* unpack_into(const NamedTensors& tensors, const uint8_t* src) {
  for (const auto& [name, t] : tensors) {
    t.backend().copy_from_host(t.raw_data(), src, t.nbytes());
    src += t.nbytes();
  }
  return src;
}

float* pack_grads(const std::vector<Tensor>& params, float* dst) {
  for (const Tensor& p : params) {
    const Tensor& g = p.grad();
    if (g.defined()) {
      ICH_CHECK(g.numel() == p.numel() && g.dtype() == DType::f32,
                "the grad of a parameter " << p.describe() << " is " << g.describe());
      g.backend().copy_to_host(dst, g.raw_data(), g.nbytes());
    } else {
      std::fill(dst, dst + p.numel(), 0.0f);
    }
    dst += p.numel();
  }
  return dst;
}

void set_grad_from_host(Tensor& p, const float* src) {
  const Tensor& g = p.grad();
  if (g.defined() && g.exclusively_owned() && g.device() == p.device()) {
    g.backend().copy_from_host(g.raw_data(), src, g.nbytes());
    return;
  }
  Tensor fresh = Tensor::empty(p.shape(), p.device());
  fresh.backend().copy_from_host(fresh.raw_data(), src, fresh.nbytes());
  p.set_grad(fresh);
}

}  // namespace ich
