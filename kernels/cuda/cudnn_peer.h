// cuDNN's convolution as a peer of the CUDA backend's own (im2col + gemm, conv2d.cu): the
// same Conv2dShape, the same NCHW layouts and the same overwrite semantics as the conv2d_*
// primitives of kernels/backend.h. Parity tests compare the two on a GPU and benchmarks time
// them side by side; training never uses it.
//
// The header is free of CUDA and cuDNN types, so any translation unit can include it (the
// test and benchmark binaries see both CUDA flavours). It exists only in builds with the
// nvcc flavour and cuDNN (ICH_HAVE_CUDNN); on a machine without a GPU nothing may call it.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "kernels/backend.h"

namespace ich {

class CudnnConv2d {
 public:
  virtual ~CudnnConv2d() = default;

  // Bytes of device workspace the three calls below need (the largest of the three).
  virtual size_t workspace_bytes() const = 0;
  // y (n, k, oh, ow) = conv(x, w) + bias (k); bias may be null.
  virtual void forward(const float* x, const float* w, const float* bias, float* y,
                       void* workspace) = 0;
  // dx (n, c, h, w), overwritten.
  virtual void backward_data(const float* dy, const float* w, float* dx, void* workspace) = 0;
  // dw (k, c, kh, kw) summed over the batch, overwritten.
  virtual void backward_weight(const float* x, const float* dy, float* dw, void* workspace) = 0;
  // The algorithms cuDNN's heuristics chose, e.g. "fwd IMPLICIT_PRECOMP_GEMM, bwd-data 1, ...".
  virtual std::string algorithms() const = 0;
};

#if defined(ICH_HAVE_CUDNN)
// backend must be a `cuda` backend (backend_for(Device::cuda(i)) or make_cuda_backend_with);
// the peer issues its work on that backend's stream and device. allow_tf32 lets cuDNN use
// TF32 tensor cores (faster on sm_80+, ~1e-3 relative error); false keeps full float32
// (FMA kernels only), which is what parity tests want.
std::unique_ptr<CudnnConv2d> make_cudnn_conv2d(Backend& cuda_backend, const Conv2dShape& s,
                                               bool allow_tf32 = false);
#endif

}  // namespace ich
