// Tensor: a dtype, a shape (NCHW, contiguous), a Device, and ref-counted storage that
// the device's backend allocated; plus the autograd fields of engine/autograd.h.
//
// A Tensor is a handle, as in PyTorch: copies share the same tensor (its storage, its
// grad, its place in the graph). Storage is freed by the backend when the last tensor
// that views it goes away (RAII). Data moves between devices only through an explicit
// to(Device); the host never touches device memory except through copy_to_host /
// copy_from_host of the backend.
//
// Shapes have at least one dimension and every dimension is > 0 (a scalar is {1});
// anything else throws ich::Error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/error.h"
#include "kernels/backend.h"

namespace ich {

enum class DType { f32, u8, i16, i32, i64 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // "f32", "u8", ...

// The C++ type of each dtype, for from_host<T> / to_host<T>.
template <typename T>
struct dtype_of;
template <>
struct dtype_of<float> {
  static constexpr DType value = DType::f32;
};
template <>
struct dtype_of<uint8_t> {
  static constexpr DType value = DType::u8;
};
template <>
struct dtype_of<int16_t> {
  static constexpr DType value = DType::i16;
};
template <>
struct dtype_of<int32_t> {
  static constexpr DType value = DType::i32;
};
template <>
struct dtype_of<int64_t> {
  static constexpr DType value = DType::i64;
};

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& shape);  // "(4, 1, 160, 160)"
// Throws ich::Error unless the shape has >= 1 dimension and every dimension is > 0.
void check_shape(const Shape& shape, const char* what);
int64_t shape_numel(const Shape& shape);

// Counter-based random state (core/philox.h): a draw of n numbers uses indices
// [offset, offset + n) under `seed` and advances offset by n, so a run can be
// reproduced and resumed from (seed, offset).
struct Generator {
  uint64_t seed = 0;
  uint64_t offset = 0;

  Generator() = default;
  explicit Generator(uint64_t seed_, uint64_t offset_ = 0) : seed(seed_), offset(offset_) {}
  // Returns the offset to draw `n` numbers at and reserves them.
  uint64_t reserve(uint64_t n) {
    const uint64_t at = offset;
    offset += n;
    return at;
  }
};

// Device memory owned by one backend allocation.
class Storage {
 public:
  Storage(const Device& device, size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  const Device& device() const { return device_; }
  Backend& backend() const { return *backend_; }

 private:
  Device device_;
  Backend* backend_ = nullptr;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

class Node;
struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false, every accessor throws

  // ---- factories (float32 unless a dtype is given)
  static Tensor empty(const Shape& shape, const Device& device = Device::cpu(),
                      DType dtype = DType::f32);
  static Tensor zeros(const Shape& shape, const Device& device = Device::cpu(),
                      DType dtype = DType::f32);
  static Tensor full(const Shape& shape, float value, const Device& device = Device::cpu());
  static Tensor ones(const Shape& shape, const Device& device = Device::cpu()) {
    return full(shape, 1.0f, device);
  }
  template <typename T>
  static Tensor from_host(const std::vector<T>& values, const Shape& shape,
                          const Device& device = Device::cpu()) {
    return from_host_bytes(values.data(), values.size(), dtype_of<T>::value, shape, device);
  }
  // U(lo, hi) and N(mean, std), drawn by the backend from `gen` (which advances).
  static Tensor uniform(const Shape& shape, float lo, float hi, Generator& gen,
                        const Device& device = Device::cpu());
  static Tensor normal(const Shape& shape, float mean, float std, Generator& gen,
                       const Device& device = Device::cpu());

  // ---- properties
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int64_t ndim() const { return static_cast<int64_t>(shape().size()); }
  int64_t dim(int64_t i) const;  // negative i counts from the end
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  DType dtype() const;
  const Device& device() const;
  Backend& backend() const;
  std::string shape_str() const { return ::ich::shape_str(shape()); }
  // "f32 (4, 1, 160, 160) on cpu", for messages
  std::string describe() const;

  // Raw device pointer; throws unless T matches the dtype.
  template <typename T>
  T* data() const {
    check_dtype(dtype_of<T>::value, "data()");
    return static_cast<T*>(raw_data());
  }
  void* raw_data() const;

  // ---- moving data
  // A copy on `device` (this tensor itself when it is already there). The copy is a new
  // leaf: it is not connected to the autograd graph and does not require grad.
  Tensor to(const Device& device) const;
  template <typename T = float>
  std::vector<T> to_host() const {
    check_dtype(dtype_of<T>::value, "to_host()");
    std::vector<T> out(static_cast<size_t>(numel()));
    copy_to_host_bytes(out.data());
    return out;
  }
  float item() const;     // the value of a one-element float32 tensor
  Tensor clone() const;   // a new leaf with a copy of the data, same device
  Tensor detach() const;  // shares the storage, no autograd history, no grad
  // Overwrites the data with src's (same dtype and element count; src may be on another
  // device: the copy goes through the host). Not recorded by autograd.
  void copy_(const Tensor& src);
  // Makes this tensor use other's storage, shape, dtype and device (as `param.data = other`
  // in PyTorch); the grad is dropped. Used to move Module parameters between devices.
  void set_data(const Tensor& other);

  // ---- autograd (engine/autograd.h has the rest)
  bool requires_grad() const;
  Tensor& set_requires_grad(bool requires);
  const Tensor& grad() const;  // undefined until a backward reaches this leaf
  void set_grad(const Tensor& grad);
  void zero_grad();  // drops the grad (PyTorch's set_to_none)
  const std::shared_ptr<Node>& grad_fn() const;
  bool is_leaf() const { return grad_fn() == nullptr; }
  // Runs backward from this tensor: a one-element tensor gets the upstream gradient 1;
  // anything else needs `upstream` of the same shape.
  void backward(const Tensor& upstream = Tensor()) const;

  // Throws ich::Error (naming `what`) unless the dtype is `dtype`.
  void check_dtype(DType dtype, const char* what) const;

  TensorImpl* impl() const { return impl_.get(); }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }
  // True when this handle is the only one to the tensor and to its storage, so writing
  // into it in place is invisible to anyone else (autograd uses it to accumulate).
  bool exclusively_owned() const;

 private:
  friend Tensor make_tensor(std::shared_ptr<Storage>, const Shape&, DType);
  static Tensor from_host_bytes(const void* src, size_t count, DType dtype, const Shape& shape,
                                const Device& device);
  void copy_to_host_bytes(void* dst) const;
  const TensorImpl& checked() const;

  std::shared_ptr<TensorImpl> impl_;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  DType dtype = DType::f32;
  int64_t numel = 0;
  // autograd
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;
};

// A tensor viewing `storage` (which must hold at least numel * itemsize bytes).
Tensor make_tensor(std::shared_ptr<Storage> storage, const Shape& shape, DType dtype);

// Throws ich::Error naming `op` and both tensors unless they are on the same device.
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
// Throws ich::Error naming `op` unless both tensors have the same shape.
void check_same_shape(const char* op, const Tensor& a, const Tensor& b);

}  // namespace ich
