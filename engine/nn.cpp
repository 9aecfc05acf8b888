#include "engine/nn.h"

#include <cmath>
#include <set>
#include <sstream>

namespace ich {

// ---- Module

void Module::check_new_name(const std::string& name) const {
  ICH_CHECK(!name.empty() && name.find('.') == std::string::npos,
            "module entry name '" << name << "' must be non-empty and contain no '.'");
  for (const auto& [n, t] : parameters_) ICH_CHECK(n != name, "'" << name << "' registered twice");
  for (const auto& [n, t] : buffers_) ICH_CHECK(n != name, "'" << name << "' registered twice");
  for (const auto& [n, m] : children_) ICH_CHECK(n != name, "'" << name << "' registered twice");
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  check_new_name(name);
  ICH_CHECK(t.defined(), "parameter '" << name << "' is undefined");
  ICH_CHECK(t.device() == device_, "parameter '" << name << "' is on " << t.device().str()
                                                 << " but the module is on " << device_.str());
  t.set_requires_grad(true);
  parameters_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_new_name(name);
  ICH_CHECK(t.defined(), "buffer '" << name << "' is undefined");
  ICH_CHECK(t.device() == device_, "buffer '" << name << "' is on " << t.device().str()
                                              << " but the module is on " << device_.str());
  buffers_.emplace_back(name, t);
  return t;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> child) {
  check_new_name(name);
  ICH_CHECK(child != nullptr, "child module '" << name << "' is null");
  ICH_CHECK(child->device_ == device_, "child module '"
                                           << name << "' is on " << child->device_.str()
                                           << " but its parent is on " << device_.str());
  child->train(training_);
  children_.emplace_back(name, std::move(child));
}

void Module::collect(const std::string& prefix, bool params, bool buffers,
                     NamedTensors& out) const {
  if (params) {
    for (const auto& [name, t] : parameters_) out.emplace_back(prefix + name, t);
  }
  if (buffers) {
    for (const auto& [name, t] : buffers_) out.emplace_back(prefix + name, t);
  }
  for (const auto& [name, child] : children_)
    child->collect(prefix + name + ".", params, buffers, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, false, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, true, out);
  return out;
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  collect("", true, true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (const auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state) {
  NamedTensors mine = state_dict();
  std::vector<std::string> missing, unexpected;
  std::set<std::string> my_names;
  for (const auto& [name, t] : mine) {
    my_names.insert(name);
    if (!state.count(name)) missing.push_back(name);
  }
  for (const auto& [name, t] : state) {
    if (!my_names.count(name)) unexpected.push_back(name);
  }
  if (!missing.empty() || !unexpected.empty()) {
    std::ostringstream os;
    os << "load_state_dict: the state does not match the model:";
    for (size_t i = 0; i < missing.size() && i < 8; ++i) os << " missing '" << missing[i] << "';";
    if (missing.size() > 8) os << " (" << missing.size() << " missing in all);";
    for (size_t i = 0; i < unexpected.size() && i < 8; ++i) {
      os << " unexpected '" << unexpected[i] << "';";
    }
    if (unexpected.size() > 8) os << " (" << unexpected.size() << " unexpected in all)";
    ICH_FAIL(os.str());
  }
  // Check every entry before writing any, so a failed load leaves the model untouched.
  for (const auto& [name, t] : mine) {
    const Tensor& src = state.at(name);
    const bool shapes_match = src.shape() == t.shape() || (src.numel() == 1 && t.numel() == 1);
    ICH_CHECK(shapes_match && src.dtype() == t.dtype(),
              "load_state_dict: '" << name << "' is " << src.describe() << " in the state but "
                                   << t.describe() << " in the model");
  }
  for (auto& [name, t] : mine) t.copy_(state.at(name));
  notify_loaded();
}

void Module::notify_loaded() {
  on_state_loaded();
  for (auto& [name, child] : children_) child->notify_loaded();
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::to(const Device& device) {
  for (auto& [name, t] : parameters_) t.set_data(t.to(device));
  for (auto& [name, t] : buffers_) t.set_data(t.to(device));
  for (auto& [name, child] : children_) child->to(device);
  device_ = device;
}

void Module::zero_grad() {
  for (auto& [name, t] : named_parameters()) t.zero_grad();
}

void Module::apply(const std::function<void(Module&)>& fn) {
  for (auto& [name, child] : children_) child->apply(fn);
  fn(*this);
}

// ---- layers

Conv2d::Conv2d(int in_channels, int out_channels, int kernel, int padding, Generator& init,
               bool with_bias)
    : padding_(padding) {
  ICH_CHECK(in_channels > 0 && out_channels > 0 && kernel > 0 && padding >= 0,
            "Conv2d(" << in_channels << ", " << out_channels << ", kernel " << kernel
                      << ", padding " << padding << "): sizes must be positive");
  const float bound = 1.0f / std::sqrt(static_cast<float>(in_channels * kernel * kernel));
  weight = register_parameter(
      "weight", Tensor::uniform({out_channels, in_channels, kernel, kernel}, -bound, bound, init));
  if (with_bias)
    bias = register_parameter("bias", Tensor::uniform({out_channels}, -bound, bound, init));
}

BatchNorm2d::BatchNorm2d(int channels, float momentum_, float eps_)
    : momentum(momentum_), eps(eps_) {
  ICH_CHECK(channels > 0, "BatchNorm2d: " << channels << " channels");
  weight = register_parameter("weight", Tensor::ones({channels}));
  bias = register_parameter("bias", Tensor::zeros({channels}));
  running_mean = register_buffer("running_mean", Tensor::zeros({channels}));
  running_var = register_buffer("running_var", Tensor::ones({channels}));
  num_batches_tracked =
      register_buffer("num_batches_tracked", Tensor::zeros({1}, Device::cpu(), DType::i64));
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  Tensor y =
      is_training() && sync_group
          ? sync_batch_norm2d(x, weight, bias, running_mean, running_var, *sync_group, momentum,
                              eps)
          : batch_norm2d(x, weight, bias, running_mean, running_var, is_training(), momentum, eps);
  if (is_training()) {
    ++batches_tracked_;
    num_batches_tracked.backend().copy_from_host(num_batches_tracked.raw_data(), &batches_tracked_,
                                                 sizeof batches_tracked_);
  }
  return y;
}

void BatchNorm2d::on_state_loaded() {
  batches_tracked_ = num_batches_tracked.to_host<int64_t>()[0];
}

int set_sync_batch_norm(Module& model, ProcessGroup* group) {
  int layers = 0;
  model.apply([&](Module& m) {
    if (auto* bn = dynamic_cast<BatchNorm2d*>(&m)) {
      bn->sync_group = group;
      ++layers;
    }
  });
  return layers;
}

Dropout2d::Dropout2d(float p, std::shared_ptr<Generator> gen) : p_(p), gen_(std::move(gen)) {
  ICH_CHECK(p >= 0.0f && p < 1.0f, "Dropout2d: p = " << p << " must be in [0, 1)");
  ICH_CHECK(gen_ != nullptr, "Dropout2d: needs a generator");
}

}  // namespace ich
