// cuDNN convolution peer (see cudnn_peer.h). Only the nvcc flavour with cuDNN has it; the
// cuda-emu build compiles this file to nothing.
//
// One cuDNN handle and one set of descriptors per peer, bound to the backend's stream.
// Algorithms come from cuDNN's heuristics (the *_v7 queries), the first one that is
// supported for the shape; with allow_tf32 false the convolution descriptor is restricted to
// FMA kernels, so results are full float32 and comparable with our im2col + gemm.
//
// The binaries do not link cuDNN: libcudnn.so.<major> is opened with dlopen when the first
// peer is made, so a machine without cuDNN (or with another major version) runs everything
// but the peer, and the peer fails with one error naming the library.
#include "kernels/cuda/cudnn_peer.h"

#if defined(ICH_HAVE_CUDNN) && !defined(ICH_CUDA_EMU)

#include <cudnn.h>
#include <dlfcn.h>

#include <algorithm>
#include <sstream>
#include <string>

#include "core/error.h"
#include "kernels/cuda/cuda_backend.h"

namespace ich::ICH_CUDA_NS {

namespace {

// clang-format off
#define ICH_CUDNN_FUNCTIONS(X)                      \
  X(cudnnGetErrorString)                            \
  X(cudnnCreate)                                    \
  X(cudnnDestroy)                                   \
  X(cudnnSetStream)                                 \
  X(cudnnCreateTensorDescriptor)                    \
  X(cudnnDestroyTensorDescriptor)                   \
  X(cudnnSetTensor4dDescriptor)                     \
  X(cudnnCreateFilterDescriptor)                    \
  X(cudnnDestroyFilterDescriptor)                   \
  X(cudnnSetFilter4dDescriptor)                     \
  X(cudnnCreateConvolutionDescriptor)               \
  X(cudnnDestroyConvolutionDescriptor)              \
  X(cudnnSetConvolution2dDescriptor)                \
  X(cudnnSetConvolutionMathType)                    \
  X(cudnnGetConvolutionForwardAlgorithm_v7)         \
  X(cudnnGetConvolutionForwardWorkspaceSize)        \
  X(cudnnGetConvolutionBackwardDataAlgorithm_v7)    \
  X(cudnnGetConvolutionBackwardDataWorkspaceSize)   \
  X(cudnnGetConvolutionBackwardFilterAlgorithm_v7)  \
  X(cudnnGetConvolutionBackwardFilterWorkspaceSize) \
  X(cudnnConvolutionForward)                        \
  X(cudnnAddTensor)                                 \
  X(cudnnConvolutionBackwardData)                   \
  X(cudnnConvolutionBackwardFilter)
// clang-format on

// The cuDNN entry points the peer calls, resolved from the shared library.
struct CudnnApi {
#define ICH_CUDNN_POINTER(name) decltype(&::name) name = nullptr;
  ICH_CUDNN_FUNCTIONS(ICH_CUDNN_POINTER)
#undef ICH_CUDNN_POINTER
};

// Opened once per process (never closed); throws ich::Error, each time it is asked, when the
// library or one of its functions is missing.
const CudnnApi& cudnn_api() {
  static const std::string library = "libcudnn.so." + std::to_string(CUDNN_MAJOR);
  static std::string problem;
  static const CudnnApi api = [] {
    CudnnApi a;
    void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = dlerror();
      problem = "cannot load " + library + " (" + (why ? why : "unknown reason") +
                "): the cuDNN peer needs cuDNN " + std::to_string(CUDNN_MAJOR) +
                " on the library path (LD_LIBRARY_PATH; the GPU bundle's run.sh: ICH_CUDA_LIBS)";
      return a;
    }
#define ICH_CUDNN_RESOLVE(name)                                               \
  a.name = reinterpret_cast<decltype(&::name)>(dlsym(handle, #name));         \
  if (a.name == nullptr && problem.empty())                                   \
    problem = library + " has no function " #name " (older than the cuDNN " + \
              std::to_string(CUDNN_VERSION) + " this build was compiled against)";
    ICH_CUDNN_FUNCTIONS(ICH_CUDNN_RESOLVE)
#undef ICH_CUDNN_RESOLVE
    return a;
  }();
  ICH_CHECK(problem.empty(), problem);
  return api;
}

// CUDNN_CHECK (runtime.h) names the error with cudnnGetErrorString: the loaded one.
#define cudnnGetErrorString(status) cudnn_api().cudnnGetErrorString(status)

class CudnnConv2dImpl final : public CudnnConv2d {
 public:
  CudnnConv2dImpl(CudaBackend& backend, const Conv2dShape& s, bool allow_tf32)
      : api_(cudnn_api()), shape_(s) {
    CUDA_CHECK(cudaSetDevice(backend.device_index()));
    CUDNN_CHECK(api_.cudnnCreate(&handle_));
    CUDNN_CHECK(api_.cudnnSetStream(handle_, backend.stream()));
    CUDNN_CHECK(api_.cudnnCreateTensorDescriptor(&x_desc_));
    CUDNN_CHECK(api_.cudnnCreateTensorDescriptor(&y_desc_));
    CUDNN_CHECK(api_.cudnnCreateTensorDescriptor(&bias_desc_));
    CUDNN_CHECK(api_.cudnnCreateFilterDescriptor(&w_desc_));
    CUDNN_CHECK(api_.cudnnCreateConvolutionDescriptor(&conv_desc_));
    CUDNN_CHECK(api_.cudnnSetTensor4dDescriptor(x_desc_, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s.n,
                                                s.c, s.h, s.w));
    CUDNN_CHECK(api_.cudnnSetTensor4dDescriptor(y_desc_, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s.n,
                                                s.k, s.out_h(), s.out_w()));
    CUDNN_CHECK(api_.cudnnSetTensor4dDescriptor(bias_desc_, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1,
                                                s.k, 1, 1));
    CUDNN_CHECK(api_.cudnnSetFilter4dDescriptor(w_desc_, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s.k,
                                                s.c, s.kh, s.kw));
    // CROSS_CORRELATION: PyTorch's (and our) convolution does not flip the kernel.
    CUDNN_CHECK(api_.cudnnSetConvolution2dDescriptor(conv_desc_, s.pad_h, s.pad_w, s.stride_h,
                                                     s.stride_w, 1, 1, CUDNN_CROSS_CORRELATION,
                                                     CUDNN_DATA_FLOAT));
    CUDNN_CHECK(api_.cudnnSetConvolutionMathType(conv_desc_,
                                                 allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
    choose_algorithms();
  }

  ~CudnnConv2dImpl() override {
    // Destructors must not throw: statuses are ignored here.
    api_.cudnnDestroyConvolutionDescriptor(conv_desc_);
    api_.cudnnDestroyFilterDescriptor(w_desc_);
    api_.cudnnDestroyTensorDescriptor(bias_desc_);
    api_.cudnnDestroyTensorDescriptor(y_desc_);
    api_.cudnnDestroyTensorDescriptor(x_desc_);
    api_.cudnnDestroy(handle_);
  }

  size_t workspace_bytes() const override {
    return std::max({fwd_bytes_, bwd_data_bytes_, bwd_filter_bytes_});
  }

  void forward(const float* x, const float* w, const float* bias, float* y,
               void* workspace) override {
    const float one = 1.0f, zero = 0.0f;
    CUDNN_CHECK(api_.cudnnConvolutionForward(handle_, &one, x_desc_, x, w_desc_, w, conv_desc_,
                                             fwd_algo_, workspace, fwd_bytes_, &zero, y_desc_, y));
    if (bias != nullptr)
      CUDNN_CHECK(api_.cudnnAddTensor(handle_, &one, bias_desc_, bias, &one, y_desc_, y));
  }

  void backward_data(const float* dy, const float* w, float* dx, void* workspace) override {
    const float one = 1.0f, zero = 0.0f;
    CUDNN_CHECK(api_.cudnnConvolutionBackwardData(handle_, &one, w_desc_, w, y_desc_, dy,
                                                  conv_desc_, bwd_data_algo_, workspace,
                                                  bwd_data_bytes_, &zero, x_desc_, dx));
  }

  void backward_weight(const float* x, const float* dy, float* dw, void* workspace) override {
    const float one = 1.0f, zero = 0.0f;
    CUDNN_CHECK(api_.cudnnConvolutionBackwardFilter(handle_, &one, x_desc_, x, y_desc_, dy,
                                                    conv_desc_, bwd_filter_algo_, workspace,
                                                    bwd_filter_bytes_, &zero, w_desc_, dw));
  }

  std::string algorithms() const override {
    std::ostringstream os;
    os << "fwd " << int(fwd_algo_) << ", bwd-data " << int(bwd_data_algo_) << ", bwd-filter "
       << int(bwd_filter_algo_);
    return os.str();
  }

 private:
  // The heuristics return candidates best first; the first with a success status runs this
  // shape. Throws when none does (cuDNN then cannot run the convolution at all).
  template <typename Perf>
  static const Perf& first_supported(const Perf* perf, int count, const char* what,
                                     const Conv2dShape& s) {
    for (int i = 0; i < count; ++i)
      if (perf[i].status == CUDNN_STATUS_SUCCESS) return perf[i];
    ICH_FAIL("cuDNN offers no " << what << " algorithm for the convolution n=" << s.n
                                << " c=" << s.c << " " << s.h << "x" << s.w << " k=" << s.k
                                << " kernel " << s.kh << "x" << s.kw);
  }

  void choose_algorithms() {
    constexpr int kCandidates = 16;
    int count = 0;
    cudnnConvolutionFwdAlgoPerf_t fwd[kCandidates];
    CUDNN_CHECK(api_.cudnnGetConvolutionForwardAlgorithm_v7(handle_, x_desc_, w_desc_, conv_desc_,
                                                            y_desc_, kCandidates, &count, fwd));
    const auto& f = first_supported(fwd, count, "forward", shape_);
    fwd_algo_ = f.algo;
    CUDNN_CHECK(api_.cudnnGetConvolutionForwardWorkspaceSize(handle_, x_desc_, w_desc_, conv_desc_,
                                                             y_desc_, fwd_algo_, &fwd_bytes_));

    cudnnConvolutionBwdDataAlgoPerf_t bwd_data[kCandidates];
    CUDNN_CHECK(api_.cudnnGetConvolutionBackwardDataAlgorithm_v7(
        handle_, w_desc_, y_desc_, conv_desc_, x_desc_, kCandidates, &count, bwd_data));
    bwd_data_algo_ = first_supported(bwd_data, count, "backward-data", shape_).algo;
    CUDNN_CHECK(api_.cudnnGetConvolutionBackwardDataWorkspaceSize(
        handle_, w_desc_, y_desc_, conv_desc_, x_desc_, bwd_data_algo_, &bwd_data_bytes_));

    cudnnConvolutionBwdFilterAlgoPerf_t bwd_filter[kCandidates];
    CUDNN_CHECK(api_.cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        handle_, x_desc_, y_desc_, conv_desc_, w_desc_, kCandidates, &count, bwd_filter));
    bwd_filter_algo_ = first_supported(bwd_filter, count, "backward-filter", shape_).algo;
    CUDNN_CHECK(api_.cudnnGetConvolutionBackwardFilterWorkspaceSize(
        handle_, x_desc_, y_desc_, conv_desc_, w_desc_, bwd_filter_algo_, &bwd_filter_bytes_));
  }

  const CudnnApi& api_;
  Conv2dShape shape_;
  cudnnHandle_t handle_ = nullptr;
  cudnnTensorDescriptor_t x_desc_ = nullptr, y_desc_ = nullptr, bias_desc_ = nullptr;
  cudnnFilterDescriptor_t w_desc_ = nullptr;
  cudnnConvolutionDescriptor_t conv_desc_ = nullptr;
  cudnnConvolutionFwdAlgo_t fwd_algo_{};
  cudnnConvolutionBwdDataAlgo_t bwd_data_algo_{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter_algo_{};
  size_t fwd_bytes_ = 0, bwd_data_bytes_ = 0, bwd_filter_bytes_ = 0;
};

}  // namespace

}  // namespace ich::ICH_CUDA_NS

namespace ich {

std::unique_ptr<CudnnConv2d> make_cudnn_conv2d(Backend& cuda_backend, const Conv2dShape& s,
                                               bool allow_tf32) {
  auto* backend = dynamic_cast<cuda::CudaBackend*>(&cuda_backend);
  ICH_CHECK(backend != nullptr, "the cuDNN convolution runs on a cuda backend, not on '"
                                    << cuda_backend.name()
                                    << "'; pass backend_for(Device::cuda())");
  ICH_CHECK(s.n > 0 && s.c > 0 && s.h > 0 && s.w > 0 && s.k > 0 && s.kh > 0 && s.kw > 0 &&
                s.pad_h >= 0 && s.pad_w >= 0 && s.stride_h > 0 && s.stride_w > 0,
            "make_cudnn_conv2d: invalid shape n=" << s.n << " c=" << s.c << " " << s.h << "x" << s.w
                                                  << " k=" << s.k << " kernel " << s.kh << "x"
                                                  << s.kw);
  return std::make_unique<cuda::CudnnConv2dImpl>(*backend, s, allow_tf32);
}

}  // namespace ich

#endif  // ICH_HAVE_CUDNN && !ICH_CUDA_EMU
