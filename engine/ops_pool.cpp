// max_pool2d: forward keeps the argmax for backward.
#include "engine/ops.h"
#include "engine/ops_common.h"

namespace ich {

Tensor max_pool2d(const Tensor& x, int kernel, int stride) {
  detail::check_input("max_pool2d", "input", x, 4);
  ICH_CHECK(kernel >= 1 && stride >= 1,
            "max_pool2d: kernel " << kernel << " and stride " << stride << " must be >= 1");
  Pool2dShape s;
  s.n = detail::to_int(x.dim(0), "max_pool2d batch");
  s.c = detail::to_int(x.dim(1), "max_pool2d channels");
  s.h = detail::to_int(x.dim(2), "max_pool2d height");
  s.w = detail::to_int(x.dim(3), "max_pool2d width");
  s.kh = s.kw = kernel;
  s.stride_h = s.stride_w = stride;
  ICH_CHECK(s.h >= kernel && s.w >= kernel,
            "max_pool2d: input " << x.shape_str() << " is smaller than the " << kernel << "x"
                                 << kernel << " window; use a larger image or a shallower net");
  const Shape out_shape{s.n, s.c, s.out_h(), s.out_w()};
  Tensor y = Tensor::empty(out_shape, x.device());
  Tensor argmax = Tensor::empty(out_shape, x.device(), DType::i32);
  x.backend().max_pool2d_forward(x.data<float>(), y.data<float>(), argmax.data<int32_t>(), s);

  record(y, "max_pool2d", {x},
         [argmax, in_shape = x.shape(), s](const Tensor& dy,
                                           const std::vector<bool>&) -> std::vector<Tensor> {
           Tensor dx = Tensor::empty(in_shape, dy.device());
           dy.backend().max_pool2d_backward(dy.data<float>(), argmax.data<int32_t>(),
                                            dx.data<float>(), s);
           return {dx};
         });
  return y;
}

}  // namespace ich
