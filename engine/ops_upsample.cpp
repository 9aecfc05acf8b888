// Bilinear upsampling (PyTorch's upsample_bilinear2d), both align_corners modes.
#include "engine/ops.h"
#include "engine/ops_common.h"

namespace ich {

Tensor upsample_bilinear2d(const Tensor& x, int out_h, int out_w, bool align_corners) {
  detail::check_input("upsample_bilinear2d", "input", x, 4);
  ICH_CHECK(out_h >= 1 && out_w >= 1,
            "upsample_bilinear2d: output size " << out_h << "x" << out_w << " must be positive");
  const int n = detail::to_int(x.dim(0), "upsample batch");
  const int c = detail::to_int(x.dim(1), "upsample channels");
  const int h = detail::to_int(x.dim(2), "upsample height");
  const int w = detail::to_int(x.dim(3), "upsample width");
  Tensor y = Tensor::empty({n, c, out_h, out_w}, x.device());
  x.backend().upsample_bilinear2d_forward(x.data<float>(), y.data<float>(), n, c, h, w, out_h,
                                          out_w, align_corners);

  record(y, "upsample_bilinear2d", {x},
         [n, c, h, w, out_h, out_w, align_corners](
             const Tensor& dy, const std::vector<bool>&) -> std::vector<Tensor> {
           Tensor dx = Tensor::empty({n, c, h, w}, dy.device());
           dy.backend().upsample_bilinear2d_backward(dy.data<float>(), dx.data<float>(), n, c, h, w,
                                                     out_h, out_w, align_corners);
           return {dx};
         });
  return y;
}

Tensor upsample_bilinear2d_scale(const Tensor& x, int scale, bool align_corners) {
  detail::check_input("upsample_bilinear2d", "input", x, 4);
  ICH_CHECK(scale >= 1, "upsample_bilinear2d: scale " << scale << " must be >= 1");
  return upsample_bilinear2d(x, detail::to_int(x.dim(2) * scale, "upsample output height"),
                             detail::to_int(x.dim(3) * scale, "upsample output width"),
                             align_corners);
}

}  // namespace ich
