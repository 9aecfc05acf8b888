// The table of op cases (the idea of ggml's test-backend-ops): one entry per op of
// kernels/backend.h says everything its checks and its benchmarks need to know about it,
//   parity  shapes (1, odd sizes, sizes off the block and tile sizes), inputs from seeds, how
//           to call the primitive(s) on a Backend, and the NMSE ceiling against the CPU;
//   race    tiny shapes spread over several blocks, for the ThreadSanitizer build;
//   grad    the engine op whose backward rule uses the primitive, its inputs, the step and
//           threshold of the central differences, the coordinates skipped (kinks);
//   bench   the U-Net's shapes, with the bytes and FLOPs of one call for the counters.
// and the drivers run every entry:
//   tests/parity  each parity case on the CPU reference and on every other backend
//   tests/tsan    each race case, likewise, under ThreadSanitizer
//   tests/engine  each gradient check, through autograd on the CPU
//   bench/        each benchmark on its device (Google Benchmark)
// An op of one kernels file forms one family (kernels/cpu/<family>.cpp and
// kernels/cuda/<family>.cu); a driver makes one test of each family ("parity: activation").
//
// A case does not own memory: it asks an OpRun for its buffers (the parity driver surrounds
// them with guard bytes and compares them afterwards; a benchmark allocates them plainly)
// and returns the call that runs the primitive(s) on them, once for a check, in a loop for
// a benchmark.
//
// Adding an op is one entry (README.md, "Adding an op"); for a LeakyReLU it would read
//   OpCase leaky_relu_forward_case(int64_t n, float slope, uint64_t seed) {
//     return {with_n("leaky_relu_forward", n), 0.0,
//             [=](OpRun& r) -> Call {
//               const float* x = r.in(values(size_t(n), seed));
//               float* y = r.out(n);
//               Backend* be = &r.backend;
//               return [=] { be->leaky_relu_forward(x, y, n, slope); };
//             },
//             2 * n};  // floats read and written
//   }
//   OpEntry e{"leaky_relu", "activation"};
//   for (int64_t n : kSizes) e.parity.push_back(leaky_relu_forward_case(n, 0.01f, 1));
//   OpGrad g{"leaky_relu", [](const std::vector<Tensor>& t) { return leaky_relu(t[0], 0.01f); },
//            {input({2, 3, 2, 2}, 15, -2.0f, 2.0f)}};
//   g.is_kink = [v = g.inputs[0].values](size_t, size_t i) { return std::fabs(v[i]) < 0.05f; };
//   e.grad.push_back(g);
//   e.bench.push_back(bench_of("BM_cpu_leaky_relu_forward_4x64x160x160", OpBench::Device::cpu,
//                              leaky_relu_forward_case(kActivation, 0.01f, 1)));
// with the backward's case alike, and the entry added to its file's list.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/gradcheck.h"
#include "common/gradcheck_op.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_options.h"

namespace ich::test::ops {

enum class ElementType { f32, i32, i16 };

template <typename T>
constexpr ElementType element_type_of() {
  static_assert(
      std::is_same_v<T, float> || std::is_same_v<T, int32_t> || std::is_same_v<T, int16_t>,
      "op cases use float, int32 and int16 buffers");
  if constexpr (std::is_same_v<T, float>) return ElementType::f32;
  if constexpr (std::is_same_v<T, int32_t>) return ElementType::i32;
  return ElementType::i16;
}

// How a case uses a buffer.
enum class Role {
  input,    // read only: must come back unchanged
  output,   // overwritten entirely: starts as NaN (floats) or -12345 (integers), so an element
            // the primitive forgets to write fails
  inout,    // read and rewritten (accumulates, or updates in place)
  scratch,  // a workspace: starts as NaN, its guards are checked, its contents are not results
};

// Where a case gets its buffers, on `backend`.
class OpRun {
 public:
  explicit OpRun(Backend& backend) : backend(backend) {}
  virtual ~OpRun() = default;
  OpRun(const OpRun&) = delete;
  OpRun& operator=(const OpRun&) = delete;

  template <typename T>
  const T* in(const std::vector<T>& values) {
    return static_cast<const T*>(add(Role::input, values));
  }
  template <typename T = float>
  T* out(size_t count) {
    return static_cast<T*>(add(Role::output, unwritten<T>(count)));
  }
  template <typename T = float>
  T* inout(const std::vector<T>& values) {
    return static_cast<T*>(add(Role::inout, values));
  }
  float* scratch(size_t count) {
    return static_cast<float*>(add(Role::scratch, unwritten<float>(count)));
  }

  Backend& backend;

 protected:
  // One buffer of `count` elements holding `init` (count * elem_bytes bytes) on the backend.
  virtual void* allocate(Role role, ElementType type, size_t elem_bytes, const void* init,
                         size_t count) = 0;

 private:
  template <typename T>
  void* add(Role role, const std::vector<T>& values) {
    return allocate(role, element_type_of<T>(), sizeof(T), values.data(), values.size());
  }
  template <typename T>
  static std::vector<T> unwritten(size_t count) {
    if constexpr (std::is_floating_point_v<T>) {
      return std::vector<T>(count, std::nanf(""));
    } else {
      return std::vector<T>(count, T(-12345));
    }
  }
};

using Call = std::function<void()>;

struct OpCase {
  std::string name{};     // op and shape: "add n=4097"; names its section and benchmark
  double max_nmse = 0.0;  // parity ceiling of every float output against the CPU reference
  // Asks the run for the buffers (inputs filled from seeds) and returns the call on them.
  std::function<Call(OpRun&)> setup{};
  // One call's traffic for the benchmark counters: the floats it must read and write once
  // (GB/s), and its FLOPs with a multiply-add counted as 2 (GFLOP/s; 0: no counter).
  int64_t floats_moved = 0;
  double flops = 0.0;
};

// Which half of a forward/backward pair a case calls. A check calls both (the backward
// consumes what the forward saved: an argmax, a mask, batch statistics); a benchmark times
// one, and for `backward` runs the forward once before timing so that those are real.
enum class Pass { forward, backward, both };

inline Call pass_call(Pass pass, Call forward, Call backward) {
  switch (pass) {
    case Pass::forward:
      return forward;
    case Pass::backward:
      forward();
      return backward;
    case Pass::both:
      break;
  }
  return [forward = std::move(forward), backward = std::move(backward)] {
    forward();
    backward();
  };
}

// The traffic (or FLOPs) of a pass, from those of the forward and of the backward.
inline double pass_share(Pass pass, double forward, double backward) {
  return pass == Pass::forward ? forward : pass == Pass::backward ? backward : forward + backward;
}

// A gradient check: y = op(inputs) through autograd on the CPU, against central differences
// of L = <r, y> (common/gradcheck_op.h).
struct OpGrad {
  std::string name{};  // "relu, kinks at 0 skipped"
  OpFn op{};           // the engine op (and its backward rule)
  std::vector<OpInput> inputs{};
  uint64_t seed = 99;             // of r = upstream_scale * U(-1, 1) ...
  std::vector<float> upstream{};  // ... or r itself when given
  float upstream_scale = 1.0f;
  GradCheckOptions options{};                             // step and threshold
  std::function<bool(size_t input, size_t i)> is_kink{};  // coordinates skipped
  // Further conditions on every input's result, with what they say.
  std::vector<std::pair<std::string, std::function<bool(const GradCheckResult&)>>> conditions{};
};

// A benchmark: Google Benchmark's name, a device, and the case (from the benchmark's
// arguments, one benchmark per row of `args`, named name/a/b/..; none: one, named name).
struct OpBench {
  enum class Device { cpu, cuda };        // cpu: wall time; cuda: cuda:0, device time (CUDA events)
  enum class Unit { automatic, us, ms };  // automatic: ms on the CPU, us on the GPU

  std::string name{};
  Device device = Device::cpu;
  std::function<OpCase(const std::vector<int64_t>& args)> make{};
  std::vector<std::vector<int64_t>> args{};
  GemmImpl gemm = GemmImpl::automatic;  // cuda: which SGEMM the backend runs
  Unit unit = Unit::automatic;
};

// A benchmark of one fixed case.
inline OpBench bench_of(std::string name, OpBench::Device device, OpCase c,
                        OpBench::Unit unit = OpBench::Unit::automatic) {
  OpBench b;
  b.name = std::move(name);
  b.device = device;
  b.make = [c = std::move(c)](const std::vector<int64_t>&) { return c; };
  b.unit = unit;
  return b;
}

struct OpEntry {
  std::string op{};      // "relu"
  std::string family{};  // "activation": the kernels file, and the test the entry runs in
  std::vector<OpCase> parity{};
  std::vector<OpCase> race{};
  std::vector<OpGrad> grad{};
  std::vector<OpBench> bench{};
};

// Every entry, families in the order of kernels/backend.h.
const std::vector<OpEntry>& op_table();
// The families of the table, each with its entries, in table order.
std::vector<std::pair<std::string, std::vector<const OpEntry*>>> op_families();
const OpEntry& op_entry(const std::string& op);  // throws ich::Error naming a missing op

// Deterministic inputs (common/gradcheck.h's generator): n values uniform in [lo, hi).
inline std::vector<float> values(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  return random_values(n, seed, lo, hi);
}

// The U-Net's first block at the ICH papers' patches, batch 4: the benchmarks' shapes.
constexpr int kBatch = 4, kChannels = 64, kSide = 160;
constexpr int64_t kPlane = int64_t(kSide) * kSide;
constexpr int64_t kActivation = int64_t(kBatch) * kChannels * kPlane;  // (4, 64, 160, 160)

// ---- cases the drivers also build on their own shapes (op_cases_conv.cpp)

Conv2dShape conv_shape(int n, int c, int h, int w, int k, int kh, int kw, int pad_h, int pad_w,
                       int stride_h, int stride_w);
std::string conv_name(const Conv2dShape& s);
// The parity table's convolutions: 1x1 images, odd and non-square sizes, strides that do
// not divide the input, padding on one axis, channel counts above the small-grid mode's.
const std::vector<Conv2dShape>& conv_parity_shapes();
enum class ConvPass { forward, backward_data, backward_weight };
OpCase conv2d_case(const Conv2dShape& s, ConvPass pass, bool with_bias, uint64_t seed);
OpCase bias_grad_case(int n, int c, int64_t hw, uint64_t seed);
OpCase batch_norm2d_train_case(int n, int c, int64_t hw, uint64_t seed, double max_nmse,
                               Pass pass = Pass::both);

namespace detail {
// The table's parts, one per op_cases_*.cpp.
std::vector<OpEntry> core_entries();
std::vector<OpEntry> conv_entries();
}  // namespace detail

}  // namespace ich::test::ops
