// Parity of the convolution-side primitives (im2col/col2im, conv2d, bias, max-pool,
// bilinear upsampling, batch norm) against the CPU reference, on every target of
// parity_common.h (cuda-emu, cuda-emu with 2-block grids, and cuda when a GPU is present),
// plus cuDNN's convolution against the CPU on a GPU.
// Shapes include 1x1 images, odd and non-square sizes, strides that do not divide the input,
// padding on one axis only, channel counts above the 2-block grid of small-grid mode and
// per-channel element counts below, at and above the 256-thread block.
//
// Ceilings: 0 where both sides do the same float operations in the same order (im2col,
// col2im, bias_add, max-pool forward and backward: the CUDA gathers sum in the CPU scatter's
// order); 1e-12 where nvcc may fuse a multiply-add the CPU rounds twice (upsample, batch-norm
// eval); 1e-10 where the order of a long sum differs (gemm, bias_grad's float32 sums against
// the CPU's double sums); 1e-9 for batch-norm train + backward, whose dgamma = sum dy * xhat
// cancels (with n*hw = 2 the two xhat are +1 and -1), so the float32 rounding of each term
// (the kernels reduce in float32, as PyTorch's) shows at ~1e-5 relative in one channel.
#include "parity/parity_common.h"

#if defined(ICH_HAVE_CUDNN)
#include "kernels/cuda/cudnn_peer.h"
#endif
#if defined(ICH_HAVE_CUDA_EMU)
#include "kernels/emu/cuda_emu.h"
#endif

namespace ich::test::parity {
namespace {

Conv2dShape conv(int n, int c, int h, int w, int k, int kh, int kw, int pad_h, int pad_w,
                 int stride_h, int stride_w) {
  Conv2dShape s;
  s.n = n, s.c = c, s.h = h, s.w = w, s.k = k;
  s.kh = kh, s.kw = kw, s.pad_h = pad_h, s.pad_w = pad_w;
  s.stride_h = stride_h, s.stride_w = stride_w;
  return s;
}

std::string conv_name(const Conv2dShape& s) {
  std::ostringstream os;
  os << "n=" << s.n << " c=" << s.c << " " << s.h << "x" << s.w << " k=" << s.k << " kernel "
     << s.kh << "x" << s.kw << " pad " << s.pad_h << "x" << s.pad_w << " stride " << s.stride_h
     << "x" << s.stride_w;
  return os.str();
}

const std::vector<Conv2dShape>& conv_shapes() {
  static const std::vector<Conv2dShape> shapes = {
      conv(1, 1, 1, 1, 1, 3, 3, 1, 1, 1, 1),     // a single pixel, all padding around it
      conv(2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1),     // odd, non-square, U-Net's 3x3 pad 1
      conv(2, 2, 9, 11, 3, 3, 3, 0, 0, 2, 2),    // stride 2 that does not divide the input
      conv(1, 3, 6, 7, 2, 2, 3, 1, 0, 2, 1),     // non-square kernel, padding on one axis
      conv(2, 5, 13, 9, 6, 1, 1, 0, 0, 1, 1),    // 1x1 pointwise
      conv(1, 2, 17, 19, 3, 5, 5, 2, 2, 3, 3),   // 5x5, stride 3
      conv(2, 16, 20, 20, 8, 3, 3, 1, 1, 1, 1),  // more entries than the 2-block grid holds
      // Both channel counts >= 16 and 3x3 / stride 1 / pad 1: the CPU's default (auto) runs
      // Winograd F(4x4, 3x3) for forward and backward data here (kernels/cpu/conv_algo.h),
      // sides not multiples of 4; the CUDA side keeps im2col. Measured forward NMSE 1.1e-12
      // against cuda-emu (4.8e-14 with ICH_CONV_ALGO=im2col), under the 1e-10 ceiling.
      conv(2, 16, 10, 9, 17, 3, 3, 1, 1, 1, 1),
  };
  return shapes;
}

// The workspace's contents after a call are scratch, not a result (the CUDA backend skips
// im2col for 1x1 convolutions): zero them on every side so that only its guards count.
void clear_workspace(ParityRun& r, float* workspace, size_t floats) {
  r.backend.fill(workspace, int64_t(floats), 0.0f);
}

TEST_CASE("im2col and col2im", "[parity]") {
  std::vector<ParityCase> cases;
  for (const Conv2dShape& s : conv_shapes()) {
    const size_t image = size_t(s.c) * s.h * s.w;
    const size_t col = size_t(s.col_rows() * s.col_cols());
    cases.push_back({"im2col " + conv_name(s), 0.0, [=](ParityRun& r) {
                       r.backend.im2col(r.in(values(image, 1)), r.out(col), s);
                     }});
    cases.push_back({"col2im " + conv_name(s), 0.0, [=](ParityRun& r) {
                       r.backend.col2im(r.in(values(col, 2)), r.out(image), s);
                     }});
  }
  check_cases(cases);
}

TEST_CASE("conv2d forward, backward data, backward weight", "[parity]") {
  std::vector<ParityCase> cases;
  for (const Conv2dShape& s : conv_shapes()) {
    const size_t x_size = size_t(s.n) * s.c * s.h * s.w;
    const size_t y_size = size_t(s.n) * s.k * s.out_h() * s.out_w();
    const size_t w_size = size_t(s.k) * s.col_rows();
    for (bool with_bias : {false, true}) {
      cases.push_back(
          {"conv2d_forward " + conv_name(s) + (with_bias ? " bias" : ""), 1e-10, [=](ParityRun& r) {
             const size_t ws = r.backend.conv2d_workspace_floats(s);
             float* workspace = r.out(ws);
             const float* bias = with_bias ? r.in(values(s.k, 13)) : nullptr;
             r.backend.conv2d_forward(r.in(values(x_size, 11)), r.in(values(w_size, 12)), bias,
                                      r.out(y_size), s, workspace);
             clear_workspace(r, workspace, ws);
           }});
    }
    cases.push_back({"conv2d_backward_data " + conv_name(s), 1e-10, [=](ParityRun& r) {
                       const size_t ws = r.backend.conv2d_workspace_floats(s);
                       float* workspace = r.out(ws);
                       r.backend.conv2d_backward_data(r.in(values(y_size, 14)),
                                                      r.in(values(w_size, 15)), r.out(x_size), s,
                                                      workspace);
                       clear_workspace(r, workspace, ws);
                     }});
    cases.push_back({"conv2d_backward_weight " + conv_name(s), 1e-10, [=](ParityRun& r) {
                       const size_t ws = r.backend.conv2d_workspace_floats(s);
                       float* workspace = r.out(ws);
                       r.backend.conv2d_backward_weight(r.in(values(x_size, 16)),
                                                        r.in(values(y_size, 17)), r.out(w_size), s,
                                                        workspace);
                       clear_workspace(r, workspace, ws);
                     }});
  }
  check_cases(cases);
}

TEST_CASE("bias_add and bias_grad", "[parity]") {
  struct Shape {
    int n, c;
    int64_t hw;
  };
  const std::vector<Shape> shapes = {{1, 1, 1}, {2, 3, 5}, {1, 4, 256}, {3, 5, 257}, {4, 9, 1000}};
  std::vector<ParityCase> cases;
  for (const Shape& s : shapes) {
    const size_t total = size_t(s.n) * s.c * s.hw;
    std::ostringstream name;
    name << "n=" << s.n << " c=" << s.c << " hw=" << s.hw;
    cases.push_back({"bias_add " + name.str(), 0.0, [=](ParityRun& r) {
                       r.backend.bias_add(r.inout(values(total, 21)), r.in(values(s.c, 22)), s.n,
                                          s.c, s.hw);
                     }});
    cases.push_back({"bias_grad " + name.str(), 1e-10, [=](ParityRun& r) {
                       r.backend.bias_grad(r.in(values(total, 23)), r.out(s.c), s.n, s.c, s.hw);
                     }});
  }
  check_cases(cases);
}

Pool2dShape pool(int n, int c, int h, int w, int kh, int kw, int stride_h, int stride_w, int pad_h,
                 int pad_w) {
  Pool2dShape s;
  s.n = n, s.c = c, s.h = h, s.w = w, s.kh = kh, s.kw = kw;
  s.stride_h = stride_h, s.stride_w = stride_w, s.pad_h = pad_h, s.pad_w = pad_w;
  return s;
}

// Values on a coarse grid, so windows hold ties (the first maximum must win on every side).
std::vector<float> with_ties(size_t n, uint64_t seed) {
  std::vector<float> v = values(n, seed, -2.0f, 2.0f);
  for (float& x : v) x = std::round(x * 2.0f) / 2.0f;
  return v;
}

TEST_CASE("max_pool2d forward and backward, with ties", "[parity]") {
  const std::vector<Pool2dShape> shapes = {
      pool(1, 1, 1, 1, 1, 1, 1, 1, 0, 0),    // one pixel
      pool(2, 3, 8, 8, 2, 2, 2, 2, 0, 0),    // the U-Net's 2x2 stride 2
      pool(2, 3, 7, 9, 2, 2, 2, 2, 0, 0),    // odd sizes: the last row/column is dropped
      pool(1, 4, 9, 7, 3, 3, 2, 2, 1, 1),    // overlapping windows with padding
      pool(2, 2, 6, 5, 3, 3, 1, 1, 1, 1),    // stride 1: every pixel in up to 9 windows
      pool(1, 5, 10, 11, 2, 3, 3, 2, 1, 1),  // non-square kernel and stride
  };
  std::vector<ParityCase> cases;
  for (const Pool2dShape& s : shapes) {
    const size_t x_size = size_t(s.n) * s.c * s.h * s.w;
    const size_t y_size = size_t(s.n) * s.c * s.out_h() * s.out_w();
    std::ostringstream name;
    name << "max_pool2d n=" << s.n << " c=" << s.c << " " << s.h << "x" << s.w << " kernel " << s.kh
         << "x" << s.kw << " stride " << s.stride_h << "x" << s.stride_w << " pad " << s.pad_h
         << "x" << s.pad_w;
    cases.push_back(
        {name.str(), 0.0, [=](ParityRun& r) {
           int32_t* argmax = r.out<int32_t>(y_size);
           r.backend.max_pool2d_forward(r.in(with_ties(x_size, 31)), r.out(y_size), argmax, s);
           r.backend.max_pool2d_backward(r.in(values(y_size, 32)), argmax, r.out(x_size), s);
         }});
  }
  check_cases(cases);
}

TEST_CASE("upsample_bilinear2d forward and backward, both corner modes", "[parity]") {
  struct Shape {
    int n, c, h, w, oh, ow;
  };
  const std::vector<Shape> shapes = {
      {1, 1, 1, 1, 4, 4},   // one pixel spread everywhere
      {2, 3, 4, 4, 8, 8},   // the U-Net's x2
      {1, 2, 3, 5, 6, 10},  // x2, non-square
      {2, 2, 7, 3, 13, 9},  // odd, non-integer scales
      {1, 3, 8, 8, 3, 5},   // downsampling
      {1, 2, 5, 5, 5, 5},   // identity
      {1, 1, 1, 6, 1, 11},  // a single row: align_corners' scale is 0 on that axis
      {1, 4, 16, 16, 32, 32},
  };
  std::vector<ParityCase> cases;
  for (const Shape& s : shapes)
    for (bool align : {true, false}) {
      const size_t x_size = size_t(s.n) * s.c * s.h * s.w;
      const size_t y_size = size_t(s.n) * s.c * s.oh * s.ow;
      std::ostringstream name;
      name << "n=" << s.n << " c=" << s.c << " " << s.h << "x" << s.w << " -> " << s.oh << "x"
           << s.ow << (align ? " align_corners" : "");
      cases.push_back({"upsample_forward " + name.str(), 1e-12, [=](ParityRun& r) {
                         r.backend.upsample_bilinear2d_forward(r.in(values(x_size, 41)),
                                                               r.out(y_size), s.n, s.c, s.h, s.w,
                                                               s.oh, s.ow, align);
                       }});
      cases.push_back({"upsample_backward " + name.str(), 1e-12, [=](ParityRun& r) {
                         r.backend.upsample_bilinear2d_backward(r.in(values(y_size, 42)),
                                                                r.out(x_size), s.n, s.c, s.h, s.w,
                                                                s.oh, s.ow, align);
                       }});
    }
  check_cases(cases);
}

TEST_CASE("batch_norm2d train forward, eval forward, backward", "[parity]") {
  struct Shape {
    int n, c;
    int64_t hw;
  };
  // hw below, at and above the 256-thread block; n*hw = 2 (the smallest a batch allows).
  const std::vector<Shape> shapes = {{1, 1, 2},   {2, 3, 35},  {5, 2, 1},   {4, 5, 17},
                                     {3, 2, 300}, {1, 3, 256}, {2, 7, 1025}};
  std::vector<ParityCase> cases;
  for (const Shape& s : shapes) {
    const size_t total = size_t(s.n) * s.c * s.hw;
    std::ostringstream name;
    name << "n=" << s.n << " c=" << s.c << " hw=" << s.hw;
    // Inputs centred away from 0 so that a one-pass E[x^2] - mean^2 would lose digits.
    // n*hw = 2 is the cancelling case of the header comment: one channel whose xhat are +1
    // and -1, where the float32 rounding of the kernel's terms shows at ~1e-5 relative.
    // Measured there: NMSE 6.6e-10 in the release build, 3.4e-9 in the sanitizer build
    // (-O1: other multiply-adds contracted on each side); every other shape <= 2e-13.
    const double train_ceiling = int64_t(s.n) * s.hw == 2 ? 1e-8 : 1e-9;
    cases.push_back(
        {"batch_norm2d train + backward " + name.str(), train_ceiling, [=](ParityRun& r) {
           const float* x = r.in(values(total, 51, 2.0f, 4.0f));
           const float* gamma = r.in(values(s.c, 52, 0.5f, 1.5f));
           const float* beta = r.in(values(s.c, 53));
           float* running_mean = r.inout(values(s.c, 54));
           float* running_var = r.inout(values(s.c, 55, 0.5f, 2.0f));
           float* save_mean = r.out(s.c);
           float* save_invstd = r.out(s.c);
           r.backend.batch_norm2d_forward_train(x, r.out(total), gamma, beta, running_mean,
                                                running_var, save_mean, save_invstd, s.n, s.c, s.hw,
                                                0.1f, 1e-5f);
           r.backend.batch_norm2d_backward(r.in(values(total, 56)), x, gamma, save_mean,
                                           save_invstd, r.out(total), r.out(s.c), r.out(s.c), s.n,
                                           s.c, s.hw);
         }});
    cases.push_back({"batch_norm2d eval " + name.str(), 1e-12, [=](ParityRun& r) {
                       r.backend.batch_norm2d_forward_eval(
                           r.in(values(total, 57, -3.0f, 3.0f)), r.out(total),
                           r.in(values(s.c, 58)), r.in(values(s.c, 59)), r.in(values(s.c, 60)),
                           r.in(values(s.c, 61, 0.1f, 2.0f)), s.n, s.c, s.hw, 1e-5f);
                     }});
  }
  check_cases(cases);
}

#if defined(ICH_HAVE_CUDA_EMU)
// The emulator resumes a block's threads in forward order by default. The block reductions
// (bias_grad, batch norm) and the shared-memory-free gathers must give the same numbers when
// the threads run in reverse or shuffled order too: a missing __syncthreads() before a
// shared read shows as a wrong sum in at least one of the orders.
TEST_CASE("conv-side kernels agree with the CPU in every emulator thread order", "[parity]") {
  const int n = 2, c = 3;
  const int64_t hw = 300;
  const size_t total = size_t(n) * c * hw;
  std::vector<ParityCase> cases;
  cases.push_back({"bias_grad n=2 c=3 hw=300", 1e-10, [=](ParityRun& r) {
                     r.backend.bias_grad(r.in(values(total, 81)), r.out(c), n, c, hw);
                   }});
  cases.push_back(
      {"batch_norm2d train + backward n=2 c=3 hw=300", 1e-9, [=](ParityRun& r) {
         const float* x = r.in(values(total, 82, 2.0f, 4.0f));
         const float* gamma = r.in(values(c, 83));
         float* save_mean = r.out(c);
         float* save_invstd = r.out(c);
         r.backend.batch_norm2d_forward_train(
             x, r.out(total), gamma, r.in(values(c, 84)), r.inout(values(c, 85)),
             r.inout(values(c, 86, 0.5f, 1.5f)), save_mean, save_invstd, n, c, hw, 0.1f, 1e-5f);
         r.backend.batch_norm2d_backward(r.in(values(total, 87)), x, gamma, save_mean, save_invstd,
                                         r.out(total), r.out(c), r.out(c), n, c, hw);
       }});
  const emu::Order original = emu::order();
  for (emu::Order order : {emu::Order::reverse, emu::Order::shuffled}) {
    emu::set_order(order);
    INFO("emulator thread order " << (order == emu::Order::reverse ? "reverse" : "shuffled"));
    for (const ParityCase& one : cases) check_case(one);  // no SECTIONs: both orders run
  }
  emu::set_order(original);
}
#endif

// cuDNN's convolution (the peer of kernels/cuda/cudnn_peer.h) against the CPU reference.
TEST_CASE("cudnn conv2d peer against the CPU reference", "[parity]") {
  if (!backend_available(Device::cuda(0))) {
    WARN("no GPU present: the cuDNN convolution peer is not tested here");
    return;
  }
#if !defined(ICH_HAVE_CUDNN)
  WARN("this build has no cuDNN: the cuDNN convolution peer is not tested");
#else
  Backend& cpu = backend_for(Device::cpu());
  Backend& gpu = backend_for(Device::cuda(0));
  for (const Conv2dShape& s : conv_shapes()) {
    INFO("cudnn conv2d " << conv_name(s));
    const size_t x_size = size_t(s.n) * s.c * s.h * s.w;
    const size_t y_size = size_t(s.n) * s.k * s.out_h() * s.out_w();
    const size_t w_size = size_t(s.k) * s.col_rows();
    const std::vector<float> x = values(x_size, 71), w = values(w_size, 72), bias = values(s.k, 73);
    const std::vector<float> dy = values(y_size, 74);

    std::vector<float> cpu_y(y_size), cpu_dx(x_size), cpu_dw(w_size);
    std::vector<float> cpu_ws(cpu.conv2d_workspace_floats(s));
    cpu.conv2d_forward(x.data(), w.data(), bias.data(), cpu_y.data(), s, cpu_ws.data());
    cpu.conv2d_backward_data(dy.data(), w.data(), cpu_dx.data(), s, cpu_ws.data());
    cpu.conv2d_backward_weight(x.data(), dy.data(), cpu_dw.data(), s, cpu_ws.data());

    std::unique_ptr<CudnnConv2d> peer = make_cudnn_conv2d(gpu, s);
    auto upload = [&gpu](const std::vector<float>& v) {
      float* d = static_cast<float*>(gpu.alloc(v.size() * sizeof(float)));
      gpu.copy_from_host(d, v.data(), v.size() * sizeof(float));
      return d;
    };
    float* d_x = upload(x);
    float* d_w = upload(w);
    float* d_bias = upload(bias);
    float* d_dy = upload(dy);
    float* d_y = upload(std::vector<float>(y_size, 0.0f));
    float* d_dx = upload(std::vector<float>(x_size, 0.0f));
    float* d_dw = upload(std::vector<float>(w_size, 0.0f));
    void* workspace = peer->workspace_bytes() > 0 ? gpu.alloc(peer->workspace_bytes()) : nullptr;
    peer->forward(d_x, d_w, d_bias, d_y, workspace);
    peer->backward_data(d_dy, d_w, d_dx, workspace);
    peer->backward_weight(d_x, d_dy, d_dw, workspace);
    std::vector<float> y(y_size), dx(x_size), dw(w_size);
    gpu.copy_to_host(y.data(), d_y, y_size * sizeof(float));
    gpu.copy_to_host(dx.data(), d_dx, x_size * sizeof(float));
    gpu.copy_to_host(dw.data(), d_dw, w_size * sizeof(float));
    for (void* p : {static_cast<void*>(d_x), static_cast<void*>(d_w), static_cast<void*>(d_bias),
                    static_cast<void*>(d_dy), static_cast<void*>(d_y), static_cast<void*>(d_dx),
                    static_cast<void*>(d_dw), workspace})
      gpu.free(p);
    INFO("algorithms: " << peer->algorithms());
    CHECK(nmse(y.data(), cpu_y.data(), y_size) <= 1e-10);
    CHECK(nmse(dx.data(), cpu_dx.data(), x_size) <= 1e-10);
    CHECK(nmse(dw.data(), cpu_dw.data(), w_size) <= 1e-10);
  }
#endif
}

}  // namespace
}  // namespace ich::test::parity
