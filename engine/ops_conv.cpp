// conv2d: forward and backward through the backend's im2col + GEMM primitives.
#include "engine/ops.h"
#include "engine/ops_common.h"

namespace ich {

namespace {

// Scratch for one conv2d call; undefined when the backend needs none.
Tensor conv_workspace(const Tensor& like, const Conv2dShape& s) {
  const size_t floats = like.backend().conv2d_workspace_floats(s);
  if (floats == 0) return Tensor();
  return Tensor::empty({static_cast<int64_t>(floats)}, like.device());
}

float* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<float>() : nullptr;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int pad, int stride) {
  detail::check_input("conv2d", "input", x, 4);
  detail::check_input("conv2d", "weight", weight, 4);
  check_same_device("conv2d (input, weight)", x, weight);
  ICH_CHECK(pad >= 0 && stride >= 1,
            "conv2d: padding " << pad << " must be >= 0 and stride " << stride << " >= 1");
  ICH_CHECK(x.dim(1) == weight.dim(1),
            "conv2d: input " << x.shape_str() << " has " << x.dim(1) << " channels but weight "
                             << weight.shape_str() << " expects " << weight.dim(1));
  if (bias.defined()) {
    detail::check_input("conv2d", "bias", bias, 1);
    check_same_device("conv2d (input, bias)", x, bias);
    ICH_CHECK(bias.dim(0) == weight.dim(0), "conv2d: bias " << bias.shape_str()
                                                            << " does not match " << weight.dim(0)
                                                            << " output channels");
  }
  Conv2dShape s;
  s.n = detail::to_int(x.dim(0), "conv2d batch");
  s.c = detail::to_int(x.dim(1), "conv2d channels");
  s.h = detail::to_int(x.dim(2), "conv2d height");
  s.w = detail::to_int(x.dim(3), "conv2d width");
  s.k = detail::to_int(weight.dim(0), "conv2d output channels");
  s.kh = detail::to_int(weight.dim(2), "conv2d kernel height");
  s.kw = detail::to_int(weight.dim(3), "conv2d kernel width");
  s.pad_h = s.pad_w = pad;
  s.stride_h = s.stride_w = stride;
  ICH_CHECK(s.h + 2 * pad >= s.kh && s.w + 2 * pad >= s.kw,
            "conv2d: input " << x.shape_str() << " with padding " << pad
                             << " is smaller than the kernel " << s.kh << "x" << s.kw);

  Tensor y = Tensor::empty({s.n, s.k, s.out_h(), s.out_w()}, x.device());
  {
    Tensor ws = conv_workspace(x, s);
    x.backend().conv2d_forward(x.data<float>(), weight.data<float>(), data_or_null(bias),
                               y.data<float>(), s, data_or_null(ws));
  }

  record(y, "conv2d", {x, weight, bias},
         [x = x.detach(), w = weight.detach(), has_bias = bias.defined(), s](
             const Tensor& dy, const std::vector<bool>& needs) -> std::vector<Tensor> {
           Backend& be = dy.backend();
           Tensor ws = conv_workspace(dy, s);
           Tensor dx, dw, db;
           if (needs[0]) {
             dx = Tensor::empty(x.shape(), dy.device());
             be.conv2d_backward_data(dy.data<float>(), w.data<float>(), dx.data<float>(), s,
                                     data_or_null(ws));
           }
           if (needs[1]) {
             dw = Tensor::empty(w.shape(), dy.device());
             be.conv2d_backward_weight(x.data<float>(), dy.data<float>(), dw.data<float>(), s,
                                       data_or_null(ws));
           }
           if (has_bias && needs[2]) {
             db = Tensor::empty({s.k}, dy.device());
             be.bias_grad(dy.data<float>(), db.data<float>(), s.n, s.k,
                          int64_t(s.out_h()) * s.out_w());
           }
           return {dx, dw, db};
         });
  return y;
}

}  // namespace ich
