// nn: Module (named parameters, buffers and children, train/eval, to(Device)) and the
// layers the U-Net is made of: Conv2d, BatchNorm2d, Dropout2d, MaxPool2d, Upsample.
//
// Names follow PyTorch's state_dict: a module's own parameters, then its own buffers, then
// each child's entries prefixed with "<child name>.", in registration order; e.g.
// "conv1.conv1_bn.running_mean". Parameters and buffers are Tensor handles shared with the
// layer's members, so to(Device) and load_state_dict update both in place.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/ops.h"
#include "engine/tensor.h"

namespace ich {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  NamedTensors named_parameters() const;  // recursive, dotted names
  NamedTensors named_buffers() const;
  NamedTensors state_dict() const;  // parameters and buffers, PyTorch's order
  std::vector<Tensor> parameters() const;
  int64_t parameter_count() const;  // elements of all parameters

  // Copies every entry of `state` into the tensor of the same name (devices may differ).
  // Throws ich::Error listing missing and unexpected names, or a shape/dtype mismatch. A
  // one-element tensor matches a one-element entry of any rank (PyTorch saves scalars as
  // shape ()).
  void load_state_dict(const std::map<std::string, Tensor>& state);

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Moves every parameter and buffer to `device` (grads are dropped).
  void to(const Device& device);
  const Device& device() const { return device_; }

  void zero_grad();  // drops every parameter's grad

  // Calls fn on every module of the tree: the children (recursively, in registration
  // order), then this one (PyTorch's Module.apply).
  void apply(const std::function<void(Module&)>& fn);

 protected:
  // Registers a parameter (it will require grad) or buffer under `name`; returns the handle.
  Tensor register_parameter(const std::string& name, Tensor t);
  Tensor register_buffer(const std::string& name, Tensor t);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
    add_child(name, child);
    return child;
  }
  // Called after load_state_dict wrote this module's tensors (for host-side mirrors).
  virtual void on_state_loaded() {}

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> child);
  void check_new_name(const std::string& name) const;
  void collect(const std::string& prefix, bool params, bool buffers, NamedTensors& out) const;
  void notify_loaded();

  NamedTensors parameters_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  Device device_ = Device::cpu();
};

// PyTorch's nn.Conv2d with its default initialisation (kaiming_uniform with a = sqrt(5)):
// weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in * k * k, drawn from
// `init` (weight first, then bias). Created on the CPU; move with to().
class Conv2d : public Module {
 public:
  Conv2d(int in_channels, int out_channels, int kernel, int padding, Generator& init,
         bool bias = true);
  Tensor forward(const Tensor& x) const { return conv2d(x, weight, bias, padding_, 1); }

  Tensor weight;  // (out, in, k, k)
  Tensor bias;    // (out), undefined without bias

 private:
  int padding_;
};

// PyTorch's nn.BatchNorm2d: weight 1, bias 0, running_mean 0, running_var 1,
// num_batches_tracked (int64) counting training forwards.
//
// With a sync_group (set_sync_batch_norm below), a training forward normalises with the
// statistics of every rank of the group together (sync_batch_norm2d, PyTorch's
// SyncBatchNorm); eval mode is unchanged.
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int channels, float momentum = 0.1f, float eps = 1e-5f);
  Tensor forward(const Tensor& x);

  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  float momentum, eps;
  ProcessGroup* sync_group = nullptr;  // not owned; must outlive every forward and backward

 protected:
  void on_state_loaded() override;

 private:
  int64_t batches_tracked_ = 0;  // host mirror of num_batches_tracked
};

// Makes every BatchNorm2d of `model` synchronise its training statistics over `group`
// (nullptr: back to per-process statistics), as PyTorch's convert_sync_batchnorm. Returns
// the number of BatchNorm2d layers.
int set_sync_batch_norm(Module& model, ProcessGroup* group);

// Drops whole channels in training mode, drawing from a generator shared by the model so
// one (seed, offset) pair reproduces or resumes a run.
class Dropout2d : public Module {
 public:
  Dropout2d(float p, std::shared_ptr<Generator> gen);
  Tensor forward(const Tensor& x) const { return dropout2d(x, p_, is_training(), *gen_); }
  Tensor forward(Tensor&& x) const { return dropout2d(std::move(x), p_, is_training(), *gen_); }
  float p() const { return p_; }

 private:
  float p_;
  std::shared_ptr<Generator> gen_;
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int kernel, int stride = 0)
      : kernel_(kernel), stride_(stride ? stride : kernel) {}
  Tensor forward(const Tensor& x) const { return max_pool2d(x, kernel_, stride_); }

 private:
  int kernel_, stride_;
};

// Bilinear upsampling by an integer scale, or to an explicit size.
class Upsample : public Module {
 public:
  Upsample(int scale, bool align_corners) : scale_(scale), align_corners_(align_corners) {}
  Tensor forward(const Tensor& x) const {
    return upsample_bilinear2d_scale(x, scale_, align_corners_);
  }
  Tensor forward_to(const Tensor& x, int out_h, int out_w) const {
    return upsample_bilinear2d(x, out_h, out_w, align_corners_);
  }

 private:
  int scale_;
  bool align_corners_;
};

}  // namespace ich
