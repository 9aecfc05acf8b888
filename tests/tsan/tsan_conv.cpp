// cuda-conv's kernels under ThreadSanitizer (tsan build, label tsan): every kernel that
// accumulates or reduces runs on tiny shapes spread over several blocks (and the 2-block
// small-grid target, where blocks loop), two emu workers, every CUDA thread a TSan fiber.
//   col2im, max-pool backward, upsample backward  gathers: each output written by one thread
//   bias_grad, batch-norm train / backward        block-per-channel reductions through shared
//                                                 memory and warp shuffles
// A race (a missing barrier, a scatter without atomics) makes TSan report and fail the
// process (exit code 66), so the test fails; the parity harness also checks the numbers
// against the CPU reference. tsan_core.cpp proves the detector catches such races.
// The CPU reference runs with one OpenMP thread (libgomp is not instrumented).
#include <omp.h>

#include <catch2/catch.hpp>
#include <vector>

#include "parity/parity_common.h"

namespace {

using ich::Conv2dShape;
using ich::Pool2dShape;
using ich::test::parity::ParityCase;
using ich::test::parity::ParityRun;
using ich::test::parity::values;

TEST_CASE("tsan: col2im, max-pool backward and upsample backward gathers are race-free", "[tsan]") {
  omp_set_num_threads(1);
  std::vector<ParityCase> cases;
  // 3 x 12 x 10 = 360 pixels: 2 blocks of 256; 3x3 stride 1 puts each pixel in 9 columns.
  Conv2dShape s;
  s.n = 1, s.c = 3, s.h = 12, s.w = 10, s.k = 2;
  const size_t col = size_t(s.col_rows() * s.col_cols());
  cases.push_back({"col2im 3x12x10 3x3", 0.0, [=](ParityRun& r) {
                     r.backend.col2im(r.in(values(col, 1)), r.out(size_t(s.c) * s.h * s.w), s);
                   }});
  // Overlapping 3x3 stride-1 windows: up to 9 windows route into each pixel.
  Pool2dShape p;
  p.n = 2, p.c = 2, p.h = 9, p.w = 8, p.kh = p.kw = 3, p.stride_h = p.stride_w = 1;
  p.pad_h = p.pad_w = 1;
  const size_t pool_in = size_t(p.n) * p.c * p.h * p.w;
  const size_t pool_out = size_t(p.n) * p.c * p.out_h() * p.out_w();
  cases.push_back(
      {"max_pool2d 3x3 stride 1", 0.0, [=](ParityRun& r) {
         int32_t* argmax = r.out<int32_t>(pool_out);
         r.backend.max_pool2d_forward(r.in(values(pool_in, 2)), r.out(pool_out), argmax, p);
         r.backend.max_pool2d_backward(r.in(values(pool_out, 3)), argmax, r.out(pool_in), p);
       }});
  // x2 and a non-integer scale: every input pixel gathers from up to 4x4 outputs.
  for (bool align : {true, false}) {
    cases.push_back(
        {std::string("upsample backward 2x3x7x6 -> 14x11") + (align ? " align_corners" : ""), 1e-12,
         [=](ParityRun& r) {
           r.backend.upsample_bilinear2d_backward(r.in(values(2 * 3 * 14 * 11, 4)),
                                                  r.out(2 * 3 * 7 * 6), 2, 3, 7, 6, 14, 11, align);
         }});
  }
  ich::test::parity::check_cases(cases);
}

TEST_CASE("tsan: bias_grad and batch-norm reductions are race-free", "[tsan]") {
  omp_set_num_threads(1);
  std::vector<ParityCase> cases;
  // 5 channels (one block each, 2 blocks looping in small-grid), 300 elements per channel:
  // more than the 256 threads of a block, so threads also carry across images.
  const int n = 3, c = 5;
  const int64_t hw = 100;
  const size_t total = size_t(n) * c * hw;
  cases.push_back({"bias_grad", 1e-10, [=](ParityRun& r) {
                     r.backend.bias_grad(r.in(values(total, 5)), r.out(c), n, c, hw);
                   }});
  cases.push_back(
      {"batch_norm2d train + backward", 1e-9, [=](ParityRun& r) {
         const float* x = r.in(values(total, 6, 1.0f, 3.0f));
         const float* gamma = r.in(values(c, 7));
         float* save_mean = r.out(c);
         float* save_invstd = r.out(c);
         r.backend.batch_norm2d_forward_train(
             x, r.out(total), gamma, r.in(values(c, 8)), r.inout(values(c, 9)),
             r.inout(values(c, 10, 0.5f, 1.5f)), save_mean, save_invstd, n, c, hw, 0.1f, 1e-5f);
         r.backend.batch_norm2d_backward(r.in(values(total, 11)), x, gamma, save_mean, save_invstd,
                                         r.out(total), r.out(c), r.out(c), n, c, hw);
       }});
  ich::test::parity::check_cases(cases);
}

TEST_CASE("tsan: conv2d forward and backward (im2col, gemm, col2im, bias) are race-free",
          "[tsan]") {
  omp_set_num_threads(1);
  Conv2dShape s;
  s.n = 2, s.c = 3, s.h = 9, s.w = 7, s.k = 4;
  const size_t x_size = size_t(s.n) * s.c * s.h * s.w;
  const size_t y_size = size_t(s.n) * s.k * s.out_h() * s.out_w();
  const size_t w_size = size_t(s.k) * s.col_rows();
  std::vector<ParityCase> cases;
  cases.push_back({"conv2d 2x3x9x7 k=4 3x3", 1e-10, [=](ParityRun& r) {
                     const size_t ws = r.backend.conv2d_workspace_floats(s);
                     float* workspace = r.out(ws);
                     const float* x = r.in(values(x_size, 12));
                     const float* w = r.in(values(w_size, 13));
                     const float* dy = r.in(values(y_size, 14));
                     r.backend.conv2d_forward(x, w, r.in(values(s.k, 15)), r.out(y_size), s,
                                              workspace);
                     r.backend.conv2d_backward_data(dy, w, r.out(x_size), s, workspace);
                     r.backend.conv2d_backward_weight(x, dy, r.out(w_size), s, workspace);
                     r.backend.fill(workspace, int64_t(ws), 0.0f);  // scratch, not a result
                   }});
  ich::test::parity::check_cases(cases);
}

}  // namespace
