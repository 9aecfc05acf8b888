// What the op table's parity cases (parity_table.cpp) cannot say on their own: the
// convolution side's reductions and gathers in every emulator thread order, and cuDNN's
// convolution (the peer of kernels/cuda/cudnn_peer.h) against the CPU reference on a GPU.
#include "parity/parity_common.h"

#if defined(ICH_HAVE_CUDNN)
#include "kernels/cuda/cudnn_peer.h"
#endif
#if defined(ICH_HAVE_CUDA_EMU)
#include "kernels/emu/cuda_emu.h"
#endif

namespace ich::test::parity {
namespace {

using ops::values;

#if defined(ICH_HAVE_CUDA_EMU)
// The emulator resumes a block's threads in forward order by default. The block reductions
// (bias_grad, batch norm) and the shared-memory-free gathers must give the same numbers when
// the threads run in reverse or shuffled order too: a missing __syncthreads() before a
// shared read shows as a wrong sum in at least one of the orders.
TEST_CASE("conv-side kernels agree with the CPU in every emulator thread order", "[parity]") {
  const std::vector<ops::OpCase> cases = {ops::bias_grad_case(2, 3, 300, 81),
                                          ops::batch_norm2d_train_case(2, 3, 300, 82, 1e-9)};
  const emu::Order original = emu::order();
  for (emu::Order order : {emu::Order::reverse, emu::Order::shuffled}) {
    emu::set_order(order);
    INFO("emulator thread order " << (order == emu::Order::reverse ? "reverse" : "shuffled"));
    for (const ops::OpCase& one : cases) check_case(one);  // no SECTIONs: both orders run
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
  for (const Conv2dShape& s : ops::conv_parity_shapes()) {
    INFO("cudnn conv2d " << ops::conv_name(s));
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
