// The peers task: our im2col + GEMM convolution (with our SGEMM and with cuBLAS) against
// cuDNN, and our SGEMM against cuBLAS, on the GPU: device time from CUDA events, the median
// of `steps` runs. The harness, not the product, is where the CUDA backend's own options and
// cuDNN are reached.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench/harness/child.h"
#include "core/error.h"
#include "kernels/backend.h"
#ifdef ICH_HAVE_CUDA
#include "kernels/cuda/cuda_options.h"
#endif
#if defined(ICH_HAVE_CUDNN)
#include "kernels/cuda/cudnn_peer.h"
#endif

namespace ich::bench {

#ifdef ICH_HAVE_CUDA
namespace {

// Device memory for the peers task, filled with uniform values.
struct Buffer {
  Buffer(Backend& b, int64_t floats, uint64_t seed) : backend(b) {
    ptr = static_cast<float*>(b.alloc(sizeof(float) * size_t(std::max<int64_t>(floats, 1))));
    if (floats > 0) b.uniform(ptr, floats, seed, 0, -1.0f, 1.0f);
  }
  ~Buffer() { backend.free(ptr); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Backend& backend;
  float* ptr = nullptr;
};

// Median device time (CUDA events) of `repeats` runs of work after one warm-up run.
double median_ms(Backend& backend, int repeats, const std::function<void()>& work) {
  work();
  backend.synchronize();
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) t.push_back(cuda::stream_time_ms(backend, work));
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

void print_peer(const std::string& op, const std::string& variant, double ms) {
  // Tab-separated: the names hold spaces.
  std::printf("ich-bench-peer\t%s\t%s\t%.9g\n", op.c_str(), variant.c_str(), ms);
}

// The three convolution passes of s on backend be, each timed as `variant`.
void time_our_convolution(Backend& be, const Conv2dShape& s, const std::string& op,
                          const std::string& variant, int repeats) {
  const int64_t nx = int64_t(s.n) * s.c * s.h * s.w,
                ny = int64_t(s.n) * s.k * s.out_h() * s.out_w();
  Buffer x(be, nx, 1), w(be, int64_t(s.k) * s.col_rows(), 2), bias(be, s.k, 3), y(be, ny, 4);
  Buffer ws(be, int64_t(be.conv2d_workspace_floats(s)), 5);
  print_peer(op + " fwd", variant, median_ms(be, repeats, [&] {
               be.conv2d_forward(x.ptr, w.ptr, bias.ptr, y.ptr, s, ws.ptr);
             }));
  print_peer(op + " bwd-data", variant, median_ms(be, repeats, [&] {
               be.conv2d_backward_data(y.ptr, w.ptr, x.ptr, s, ws.ptr);
             }));
  print_peer(op + " bwd-weight", variant, median_ms(be, repeats, [&] {
               be.conv2d_backward_weight(x.ptr, y.ptr, w.ptr, s, ws.ptr);
             }));
}

void time_cudnn_convolution(Backend& be, const Conv2dShape& s, const std::string& op, int repeats) {
#if defined(ICH_HAVE_CUDNN)
  const int64_t nx = int64_t(s.n) * s.c * s.h * s.w,
                ny = int64_t(s.n) * s.k * s.out_h() * s.out_w();
  std::unique_ptr<CudnnConv2d> peer = make_cudnn_conv2d(be, s, false);
  Buffer x(be, nx, 1), w(be, int64_t(s.k) * s.col_rows(), 2), bias(be, s.k, 3), y(be, ny, 4);
  Buffer ws(be, int64_t((peer->workspace_bytes() + 3) / 4), 5);
  void* wsp = peer->workspace_bytes() > 0 ? ws.ptr : nullptr;
  print_peer(op + " fwd", "cuDNN",
             median_ms(be, repeats, [&] { peer->forward(x.ptr, w.ptr, bias.ptr, y.ptr, wsp); }));
  print_peer(op + " bwd-data", "cuDNN",
             median_ms(be, repeats, [&] { peer->backward_data(y.ptr, w.ptr, x.ptr, wsp); }));
  print_peer(op + " bwd-weight", "cuDNN",
             median_ms(be, repeats, [&] { peer->backward_weight(x.ptr, y.ptr, w.ptr, wsp); }));
#else
  (void)be, (void)s, (void)repeats;
  std::printf("ich-bench-peer\t%s fwd\tcuDNN\tnan\n", op.c_str());
#endif
}

}  // namespace
#endif

int measure_peers(const BenchConfig& c) {
#ifdef ICH_HAVE_CUDA
  const Device device = Device::parse(c.device);
  ICH_CHECK(device.kind == DeviceKind::cuda && backend_available(device),
            "the peers task needs a GPU (device cuda), not " << c.device);
  const int repeats = std::max(3, c.steps);
  CudaBackendOptions options = CudaBackendOptions::from_environment();
  options.gemm = GemmImpl::ours;
  std::unique_ptr<Backend> ours = make_cuda_backend_with(device.index, options);
  options.gemm = GemmImpl::cublas;
  std::unique_ptr<Backend> cublas = make_cuda_backend_with(device.index, options);

  Conv2dShape s;  // a 3x3 convolution of the U-Net's first level
  s.n = c.batch, s.c = c.width, s.k = c.width, s.h = s.w = c.size;
  char op[96];
  std::snprintf(op, sizeof op, "conv3x3 %dx%dx%dx%d->%d", s.n, s.c, s.h, s.w, s.k);
  time_our_convolution(*ours, s, op, "im2col+our SGEMM", repeats);
  time_our_convolution(*cublas, s, op, "im2col+cuBLAS", repeats);
  time_cudnn_convolution(*cublas, s, op, repeats);
  constexpr int kGemm = 1024;
  for (auto* be : {ours.get(), cublas.get()}) {
    const std::string variant = be == ours.get() ? "our SGEMM" : "cuBLAS";
    Buffer a(*be, int64_t(kGemm) * kGemm, 1), b(*be, int64_t(kGemm) * kGemm, 2),
        out(*be, int64_t(kGemm) * kGemm, 3);
    print_peer("sgemm 1024x1024x1024", variant, median_ms(*be, repeats, [&] {
                 be->gemm(false, false, kGemm, kGemm, kGemm, 1.0f, a.ptr, kGemm, b.ptr, kGemm, 0.0f,
                          out.ptr, kGemm);
               }));
  }
  std::printf("ich-bench-result step_s= allocs_per_step=0 hits_per_step=0 peak_bytes=0\n");
  return 0;
#else
  (void)c;
  ICH_FAIL("the peers task needs the cuda backend; this build has none (nvcc was not found)");
#endif
}

}  // namespace ich::bench
