// Synchronous data-parallel training (engine/data_parallel.h).
#include "engine/data_parallel.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <string>

#include "core/error.h"
#include "engine/host_pack.h"

namespace ich {

void broadcast_parameters(Module& model, ProcessGroup& group) {
  if (group.size() == 1) return;
  const NamedTensors state = model.state_dict();
  std::vector<uint8_t> host(total_bytes(state));
  if (group.is_root()) pack_tensors(state, host.data());
  group.broadcast(host.data(), host.size(), 0);
  if (group.is_root()) return;
  // Through load_state_dict, so modules with host mirrors of their buffers (BatchNorm's
  // batch count) see the new values.
  std::map<std::string, Tensor> loaded;
  const uint8_t* src = host.data();
  for (const auto& [name, t] : state) {
    Tensor copy = Tensor::empty(t.shape(), Device::cpu(), t.dtype());
    std::memcpy(copy.raw_data(), src, t.nbytes());
    src += t.nbytes();
    loaded.emplace(name, copy);
  }
  model.load_state_dict(loaded);
}

GradientBucketer::GradientBucketer(std::vector<Tensor> params, size_t bucket_bytes)
    : params_(std::move(params)) {
  ICH_CHECK(bucket_bytes >= sizeof(float), "the gradient bucket size must be at least 4 bytes");
  const int64_t bucket_floats = int64_t(bucket_bytes / sizeof(float));
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    ICH_CHECK(p.dtype() == DType::f32,
              "data-parallel training needs float32 parameters, got " << p.describe());
    if (buckets_.empty() ||
        (buckets_.back().numel > 0 && buckets_.back().numel + p.numel() > bucket_floats)) {
      buckets_.emplace_back();
    }
    Bucket& b = buckets_.back();
    b.entries.push_back({i, b.numel, p.numel()});
    b.numel += p.numel();
  }
  int64_t largest = 0;
  for (const Bucket& b : buckets_) largest = std::max(largest, b.numel);
  host_.resize(size_t(largest));
}

void GradientBucketer::allreduce_average(ProcessGroup& group) {
  if (group.size() == 1) return;
  const float inv_size = 1.0f / float(group.size());
  for (const Bucket& bucket : buckets_) {
    for (const Entry& e : bucket.entries) pack_grads({params_[e.param]}, host_.data() + e.offset);
    group.allreduce_sum(host_.data(), bucket.numel);
    for (int64_t i = 0; i < bucket.numel; ++i) host_[size_t(i)] *= inv_size;
    for (const Entry& e : bucket.entries)
      set_grad_from_host(params_[e.param], host_.data() + e.offset);
  }
}

}  // namespace ich
