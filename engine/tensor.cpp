#include "engine/tensor.h"

#include <sstream>

#include "engine/autograd.h"

namespace ich {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return 4;
    case DType::u8:
      return 1;
    case DType::i16:
      return 2;
    case DType::i32:
      return 4;
    case DType::i64:
      return 8;
  }
  ICH_FAIL("unknown dtype " << static_cast<int>(dtype));
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "f32";
    case DType::u8:
      return "u8";
    case DType::i16:
      return "i16";
    case DType::i32:
      return "i32";
    case DType::i64:
      return "i64";
  }
  return "unknown";
}

std::string shape_str(const Shape& shape) {
  std::ostringstream os;
  os << '(';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << ')';
  return os.str();
}

void check_shape(const Shape& shape, const char* what) {
  ICH_CHECK(!shape.empty(), what << ": a tensor needs at least one dimension (a scalar is (1))");
  for (const int64_t d : shape) {
    ICH_CHECK(d > 0, what << ": shape " << shape_str(shape)
                          << " has a dimension <= 0; every dimension must be positive");
  }
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (const int64_t d : shape) n *= d;
  return n;
}

// ---- Storage

Storage::Storage(const Device& device, size_t bytes)
    : device_(device), backend_(&backend_for(device)), bytes_(bytes) {
  ptr_ = backend_->alloc(bytes);
}

Storage::~Storage() {
  backend_->free(ptr_);
}

// ---- Tensor

Tensor make_tensor(std::shared_ptr<Storage> storage, const Shape& shape, DType dtype) {
  check_shape(shape, "tensor");
  const int64_t numel = shape_numel(shape);
  ICH_CHECK(storage && storage->bytes() >= static_cast<size_t>(numel) * dtype_size(dtype),
            "storage of " << (storage ? storage->bytes() : 0) << " bytes is too small for a "
                          << dtype_name(dtype) << " tensor of shape " << shape_str(shape));
  Tensor t;
  t.impl_ = std::make_shared<TensorImpl>();
  t.impl_->storage = std::move(storage);
  t.impl_->shape = shape;
  t.impl_->dtype = dtype;
  t.impl_->numel = numel;
  return t;
}

const TensorImpl& Tensor::checked() const {
  ICH_CHECK(impl_ != nullptr,
            "use of an undefined tensor (default-constructed, or a grad that "
            "was never computed)");
  return *impl_;
}

Tensor Tensor::empty(const Shape& shape, const Device& device, DType dtype) {
  check_shape(shape, "Tensor::empty");
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  return make_tensor(std::make_shared<Storage>(device, bytes), shape, dtype);
}

Tensor Tensor::zeros(const Shape& shape, const Device& device, DType dtype) {
  Tensor t = empty(shape, device, dtype);
  if (dtype == DType::f32) {
    t.backend().fill(t.data<float>(), t.numel(), 0.0f);
  } else {
    const std::vector<uint8_t> zero_bytes(t.nbytes(), 0);
    t.backend().copy_from_host(t.raw_data(), zero_bytes.data(), zero_bytes.size());
  }
  return t;
}

Tensor Tensor::full(const Shape& shape, float value, const Device& device) {
  Tensor t = empty(shape, device, DType::f32);
  t.backend().fill(t.data<float>(), t.numel(), value);
  return t;
}

Tensor Tensor::from_host_bytes(const void* src, size_t count, DType dtype, const Shape& shape,
                               const Device& device) {
  check_shape(shape, "Tensor::from_host");
  ICH_CHECK(static_cast<int64_t>(count) == shape_numel(shape),
            "Tensor::from_host: " << count << " values do not fill shape "
                                  << ::ich::shape_str(shape) << " (" << shape_numel(shape)
                                  << " elements)");
  Tensor t = empty(shape, device, dtype);
  t.backend().copy_from_host(t.raw_data(), src, t.nbytes());
  return t;
}

Tensor Tensor::uniform(const Shape& shape, float lo, float hi, Generator& gen,
                       const Device& device) {
  ICH_CHECK(lo <= hi, "Tensor::uniform: lo " << lo << " > hi " << hi);
  Tensor t = empty(shape, device, DType::f32);
  const uint64_t offset = gen.reserve(static_cast<uint64_t>(t.numel()));
  t.backend().uniform(t.data<float>(), t.numel(), gen.seed, offset, lo, hi);
  return t;
}

Tensor Tensor::normal(const Shape& shape, float mean, float std, Generator& gen,
                      const Device& device) {
  ICH_CHECK(std >= 0.0f, "Tensor::normal: std " << std << " is negative");
  Tensor t = empty(shape, device, DType::f32);
  const uint64_t offset = gen.reserve(static_cast<uint64_t>(t.numel()));
  t.backend().normal(t.data<float>(), t.numel(), gen.seed, offset, mean, std);
  return t;
}

const Shape& Tensor::shape() const {
  return checked().shape;
}

int64_t Tensor::dim(int64_t i) const {
  const int64_t n = ndim();
  const int64_t j = i < 0 ? i + n : i;
  ICH_CHECK(j >= 0 && j < n,
            "dimension " << i << " is out of range for a tensor of shape " << shape_str());
  return shape()[static_cast<size_t>(j)];
}

int64_t Tensor::numel() const {
  return checked().numel;
}
DType Tensor::dtype() const {
  return checked().dtype;
}
const Device& Tensor::device() const {
  return checked().storage->device();
}
Backend& Tensor::backend() const {
  return checked().storage->backend();
}
void* Tensor::raw_data() const {
  return checked().storage->data();
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined tensor";
  return std::string(dtype_name(dtype())) + " " + shape_str() + " on " + device().str();
}

void Tensor::check_dtype(DType want, const char* what) const {
  ICH_CHECK(dtype() == want,
            what << ": expected a " << dtype_name(want) << " tensor, got " << describe());
}

void Tensor::copy_to_host_bytes(void* dst) const {
  backend().copy_to_host(dst, raw_data(), nbytes());
}

Tensor Tensor::to(const Device& target) const {
  if (device() == target) return *this;
  Tensor out = empty(shape(), target, dtype());
  std::vector<uint8_t> staging(nbytes());
  backend().copy_to_host(staging.data(), raw_data(), staging.size());
  out.backend().copy_from_host(out.raw_data(), staging.data(), staging.size());
  return out;
}

float Tensor::item() const {
  ICH_CHECK(numel() == 1, "item() needs a one-element tensor, got " << describe());
  check_dtype(DType::f32, "item()");
  float v = 0.0f;
  backend().copy_to_host(&v, raw_data(), sizeof v);
  return v;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), device(), dtype());
  backend().copy(out.raw_data(), raw_data(), nbytes());
  return out;
}

Tensor Tensor::detach() const {
  const TensorImpl& self = checked();
  return make_tensor(self.storage, self.shape, self.dtype);
}

void Tensor::copy_(const Tensor& src) {
  ICH_CHECK(src.dtype() == dtype() && src.numel() == numel(),
            "copy_: cannot copy " << src.describe() << " into " << describe());
  if (src.device() == device()) {
    backend().copy(raw_data(), src.raw_data(), nbytes());
    return;
  }
  std::vector<uint8_t> staging(nbytes());
  src.backend().copy_to_host(staging.data(), src.raw_data(), staging.size());
  backend().copy_from_host(raw_data(), staging.data(), staging.size());
}

void Tensor::set_data(const Tensor& other) {
  ICH_CHECK(is_leaf(), "set_data: only a leaf tensor (a parameter or buffer) can be replaced");
  const TensorImpl& src = other.checked();
  impl_->storage = src.storage;
  impl_->shape = src.shape;
  impl_->dtype = src.dtype;
  impl_->numel = src.numel;
  impl_->grad = Tensor();
}

bool Tensor::exclusively_owned() const {
  return impl_ && impl_.use_count() == 1 && impl_->storage.use_count() == 1;
}

bool Tensor::requires_grad() const {
  return checked().requires_grad;
}

Tensor& Tensor::set_requires_grad(bool requires) {
  checked();
  ICH_CHECK(!requires || dtype() == DType::f32,
            "only float32 tensors can require grad, got " << describe());
  ICH_CHECK(is_leaf() || requires,
            "requires_grad cannot be switched off on a tensor computed by an op; use detach()");
  impl_->requires_grad = requires;
  return *this;
}

const Tensor& Tensor::grad() const {
  return checked().grad;
}

void Tensor::set_grad(const Tensor& grad) {
  checked();
  if (grad.defined()) {
    check_same_shape("set_grad", *this, grad);
    check_same_device("set_grad", *this, grad);
  }
  impl_->grad = grad;
}

void Tensor::zero_grad() {
  checked(), impl_->grad = Tensor();
}

const std::shared_ptr<Node>& Tensor::grad_fn() const {
  return checked().grad_fn;
}

void Tensor::backward(const Tensor& upstream) const {
  if (upstream.defined()) {
    run_backward(*this, upstream);
    return;
  }
  ICH_CHECK(numel() == 1,
            "backward() without an upstream gradient needs a one-element tensor "
            "(a loss), got "
                << describe() << "; pass the upstream gradient");
  run_backward(*this, Tensor::ones(shape(), device()));
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  ICH_CHECK(a.device() == b.device(), op << ": tensors on different devices (" << a.describe()
                                         << " and " << b.describe()
                                         << "); move one explicitly with .to(device)");
}

void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  ICH_CHECK(a.shape() == b.shape(),
            op << ": shapes differ, " << a.shape_str() << " vs " << b.shape_str());
}

}  // namespace ich
