#include "apps/bench_child.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <sstream>

#include "core/error.h"
#include "data/blobs.h"
#include "engine/optim.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_options.h"
#include "models/unet.h"
#if defined(ICH_HAVE_CUDNN)
#include "kernels/cuda/cudnn_peer.h"
#endif

extern char** environ;

namespace ich::app {

namespace {

using Clock = std::chrono::steady_clock;

int parse_int(const std::string& key, const std::string& value) {
  char* end = nullptr;
  const long v = std::strtol(value.c_str(), &end, 10);
  ICH_CHECK(!value.empty() && *end == '\0' && v >= -1 && v <= 1'000'000,
            "bench child: " << key << "=" << value << " is not an integer in [-1, 1000000]");
  return int(v);
}

std::string last_line(const std::string& text) {
  size_t end = text.find_last_not_of("\n\r ");
  if (end == std::string::npos) return "";
  const size_t start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1,
                     end - (start == std::string::npos ? 0 : start + 1) + 1);
}

// ---- the child's measurements

int run_train(const BenchConfig& c) {
  const Device device = Device::parse(c.device);
  ICH_CHECK(backend_available(device), "device " << c.device << " is not available here");
  UnetConfig config;
  config.width = c.width;
  config.depth = c.depth;
  config.validate();
  Unet net(config, 1);
  net.to(device);
  Adam adam(net.named_parameters());
  const Shape shape{c.batch, 1, c.size, c.size};
  const BlobBatch fixed = make_blob_batch(c.batch, c.size, 1, 0);
  auto step = [&](int i) {
    const BlobBatch drawn =
        c.data_in_step ? make_blob_batch(c.batch, c.size, 1, uint64_t(i) * c.batch) : BlobBatch{};
    const BlobBatch& b = c.data_in_step ? drawn : fixed;
    const Tensor x = Tensor::from_host(b.images, shape, device);
    const Tensor y = Tensor::from_host(b.masks, shape, device);
    adam.zero_grad();
    const Tensor loss = dice_bce_loss(net.forward(x), y);
    loss.backward();
    adam.step();
    const float v = loss.item();  // waits for the device
    ICH_CHECK(std::isfinite(v), "the loss is " << v << " at step " << i);
  };
  Backend& backend = backend_for(device);
  for (int i = 0; i < c.warmup; ++i) step(i);
  const MemoryStats before = backend.memory_stats();
  std::vector<double> times;
  for (int i = 0; i < c.steps; ++i) {
    const auto t0 = Clock::now();
    step(c.warmup + i);
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  const MemoryStats after = backend.memory_stats();
  std::printf("ich-bench-result step_s=");
  for (size_t i = 0; i < times.size(); ++i) std::printf("%s%.9g", i ? ";" : "", times[i]);
  std::printf(" allocs_per_step=%.9g hits_per_step=%.9g peak_bytes=%zu\n",
              double(after.device_alloc_calls - before.device_alloc_calls) / c.steps,
              double(after.cache_hits - before.cache_hits) / c.steps, after.peak_bytes_in_use);
  return 0;
}

#ifdef ICH_HAVE_CUDA
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
#endif

// Our im2col + GEMM convolution (with our SGEMM and with cuBLAS) against cuDNN, and our
// SGEMM against cuBLAS, on the GPU: device time from CUDA events, median of `steps` runs.
int run_peers(const BenchConfig& c) {
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
  const int64_t nx = int64_t(s.n) * s.c * s.h * s.w,
                ny = int64_t(s.n) * s.k * s.out_h() * s.out_w();
  const int64_t nw = int64_t(s.k) * s.col_rows();
  char op[96];
  std::snprintf(op, sizeof op, "conv3x3 %dx%dx%dx%d->%d", s.n, s.c, s.h, s.w, s.k);
  for (auto* be : {ours.get(), cublas.get()}) {
    const std::string variant = be == ours.get() ? "im2col+our SGEMM" : "im2col+cuBLAS";
    Buffer x(*be, nx, 1), w(*be, nw, 2), bias(*be, s.k, 3), y(*be, ny, 4);
    Buffer ws(*be, int64_t(be->conv2d_workspace_floats(s)), 5);
    print_peer(std::string(op) + " fwd", variant, median_ms(*be, repeats, [&] {
                 be->conv2d_forward(x.ptr, w.ptr, bias.ptr, y.ptr, s, ws.ptr);
               }));
    print_peer(std::string(op) + " bwd-data", variant, median_ms(*be, repeats, [&] {
                 be->conv2d_backward_data(y.ptr, w.ptr, x.ptr, s, ws.ptr);
               }));
    print_peer(std::string(op) + " bwd-weight", variant, median_ms(*be, repeats, [&] {
                 be->conv2d_backward_weight(x.ptr, y.ptr, w.ptr, s, ws.ptr);
               }));
  }
#if defined(ICH_HAVE_CUDNN)
  {
    Backend& be = *cublas;
    std::unique_ptr<CudnnConv2d> peer = make_cudnn_conv2d(be, s, false);
    Buffer x(be, nx, 1), w(be, nw, 2), bias(be, s.k, 3), y(be, ny, 4);
    Buffer ws(be, int64_t((peer->workspace_bytes() + 3) / 4), 5);
    void* wsp = peer->workspace_bytes() > 0 ? ws.ptr : nullptr;
    print_peer(std::string(op) + " fwd", "cuDNN",
               median_ms(be, repeats, [&] { peer->forward(x.ptr, w.ptr, bias.ptr, y.ptr, wsp); }));
    print_peer(std::string(op) + " bwd-data", "cuDNN",
               median_ms(be, repeats, [&] { peer->backward_data(y.ptr, w.ptr, x.ptr, wsp); }));
    print_peer(std::string(op) + " bwd-weight", "cuDNN",
               median_ms(be, repeats, [&] { peer->backward_weight(x.ptr, y.ptr, w.ptr, wsp); }));
  }
#else
  std::printf("ich-bench-peer\t%s fwd\tcuDNN\tnan\n", op);
#endif
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
  ICH_FAIL("the peers task needs the cuda backend; this build has none (nvcc was not found)");
  (void)c;
#endif
}

// "tag k1=v1 k2=v2" (values without spaces) -> {k1: v1, k2: v2}
std::map<std::string, std::string> fields_of(const std::string& line) {
  std::map<std::string, std::string> f;
  std::istringstream in(line);
  std::string word;
  in >> word;  // the tag
  while (in >> word) {
    const size_t eq = word.find('=');
    if (eq != std::string::npos) f[word.substr(0, eq)] = word.substr(eq + 1);
  }
  return f;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string part; std::getline(in, part, sep);) out.push_back(part);
  return out;
}

double to_double(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  return (!s.empty() && *end == '\0') ? v : NAN;
}

}  // namespace

std::vector<std::string> BenchConfig::to_args() const {
  return {"task=" + task,
          "device=" + device,
          "width=" + std::to_string(width),
          "depth=" + std::to_string(depth),
          "size=" + std::to_string(size),
          "batch=" + std::to_string(batch),
          "warmup=" + std::to_string(warmup),
          "steps=" + std::to_string(steps),
          "data_in_step=" + std::to_string(int(data_in_step)),
          "threads=" + std::to_string(threads),
          "caching=" + std::to_string(caching)};
}

BenchConfig BenchConfig::from_args(const std::vector<std::string>& words) {
  BenchConfig c;
  for (const std::string& w : words) {
    const size_t eq = w.find('=');
    ICH_CHECK(eq != std::string::npos, "bench child: '" << w << "' is not KEY=VALUE");
    const std::string key = w.substr(0, eq), value = w.substr(eq + 1);
    if (key == "task")
      c.task = value;
    else if (key == "device")
      c.device = value;
    else if (key == "width")
      c.width = parse_int(key, value);
    else if (key == "depth")
      c.depth = parse_int(key, value);
    else if (key == "size")
      c.size = parse_int(key, value);
    else if (key == "batch")
      c.batch = parse_int(key, value);
    else if (key == "warmup")
      c.warmup = parse_int(key, value);
    else if (key == "steps")
      c.steps = parse_int(key, value);
    else if (key == "data_in_step")
      c.data_in_step = parse_int(key, value) != 0;
    else if (key == "threads")
      c.threads = parse_int(key, value);
    else if (key == "caching")
      c.caching = parse_int(key, value);
    else
      ICH_FAIL("bench child: unknown setting '" << key << "'");
  }
  ICH_CHECK(c.task == "train" || c.task == "peers", "bench child: unknown task '" << c.task << "'");
  ICH_CHECK(c.width >= 1 && c.size >= 8 && c.batch >= 1 && c.steps >= 1 && c.warmup >= 0,
            "bench child: width, batch, steps must be >= 1, size >= 8, warmup >= 0");
  return c;
}

double BenchResult::median_step_s() const {
  if (step_s.empty()) return NAN;
  std::vector<double> t = step_s;
  std::sort(t.begin(), t.end());
  const size_t n = t.size();
  return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

double BenchResult::total_step_s() const {
  double s = 0;
  for (double t : step_s) s += t;
  return s;
}

int bench_child_main(const std::vector<std::string>& words) {
  const BenchConfig c = BenchConfig::from_args(words);
  return c.task == "peers" ? run_peers(c) : run_train(c);
}

BenchResult run_bench_child(const BenchConfig& config, double timeout_s) {
  // Everything exec needs is built before fork: the child may only call async-signal-safe
  // functions until exec.
  std::vector<std::string> args{"/proc/self/exe", "bench", "__child"};
  for (auto& a : config.to_args()) args.push_back(a);
  std::vector<std::string> env;
  auto overridden = [&](const char* entry) {
    for (const char* key : {"OMP_NUM_THREADS=", "OPENBLAS_NUM_THREADS=", "ICH_EMU_WORKERS=",
                            "ICH_CUDA_CACHING_ALLOCATOR="}) {
      const bool set_here = std::strcmp(key, "ICH_CUDA_CACHING_ALLOCATOR=") == 0
                                ? config.caching >= 0
                                : config.threads > 0;
      if (set_here && std::strncmp(entry, key, std::strlen(key)) == 0) return true;
    }
    return false;
  };
  for (char** e = environ; *e; ++e)
    if (!overridden(*e)) env.emplace_back(*e);
  if (config.threads > 0) {
    const std::string t = std::to_string(config.threads);
    env.push_back("OMP_NUM_THREADS=" + t);
    env.push_back("OPENBLAS_NUM_THREADS=" + t);
    env.push_back("ICH_EMU_WORKERS=" + t);
  }
  if (config.caching >= 0)
    env.push_back("ICH_CUDA_CACHING_ALLOCATOR=" + std::to_string(config.caching));
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  ICH_CHECK(::pipe2(out_pipe, O_CLOEXEC) == 0 && ::pipe2(err_pipe, O_CLOEXEC) == 0,
            "cannot create a pipe for a benchmark child: " << std::strerror(errno));
  const pid_t pid = ::fork();
  ICH_CHECK(pid >= 0, "cannot start a benchmark child: " << std::strerror(errno));
  if (pid == 0) {
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);

  BenchResult r;
  std::string out, err;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  bool timed_out = false;
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  char buf[4096];
  while (open_fds > 0) {
    const double left = std::chrono::duration<double>(deadline - Clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    const int ready = ::poll(fds, 2, int(std::min(left * 1000.0 + 1.0, 1000.0)));
    if (ready < 0 && errno != EINTR) break;
    for (auto& fd : fds) {
      if (fd.fd < 0 || !(fd.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t got = ::read(fd.fd, buf, sizeof buf);
      if (got <= 0) {
        ::close(fd.fd);
        fd.fd = -1;
        --open_fds;
        continue;
      }
      (&fd == &fds[0] ? out : err).append(buf, size_t(got));
    }
  }
  for (auto& fd : fds)
    if (fd.fd >= 0) ::close(fd.fd);
  int status = 0;
  rusage usage{};
  while (::wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
  }
  r.max_rss_bytes = double(usage.ru_maxrss) * 1024.0;  // Linux: KiB

  if (timed_out) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "timed out after %g s (--timeout-s)", timeout_s);
    r.error = buf;
    return r;
  }
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    r.error = std::string("killed by signal ") + std::to_string(sig) + " (" + strsignal(sig) +
              (sig == SIGKILL ? "; out of memory?" : "") + ")";
    return r;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const std::string line = last_line(err);
    r.error = "exit " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) +
              (line.empty() ? "" : ": " + line);
    return r;
  }
  std::istringstream lines(out);
  std::string line;
  bool found = false;
  while (std::getline(lines, line)) {
    if (line.rfind("ich-bench-peer\t", 0) == 0) {
      const auto f = split(line, '\t');
      if (f.size() == 4) r.peers.push_back({f[1], f[2], to_double(f[3])});
    } else if (line.rfind("ich-bench-result ", 0) == 0) {
      auto f = fields_of(line);
      for (const std::string& t : split(f["step_s"], ';'))
        if (!t.empty()) r.step_s.push_back(to_double(t));
      r.allocs_per_step = to_double(f["allocs_per_step"]);
      r.hits_per_step = to_double(f["hits_per_step"]);
      r.peak_bytes = to_double(f["peak_bytes"]);
      found = true;
    }
  }
  if (!found) {
    r.error = "the child printed no result line";
    return r;
  }
  r.ok = true;
  return r;
}

double estimate_train_bytes(int width, int depth, int size, int batch) {
  // Activation elements of one image summed over the levels: level l has width*2^l channels
  // at side size/2^l; the bottom keeps the deepest level's channels at size/2^depth.
  double per_image = 0;
  double side = size;
  int channels = width;
  for (int l = 0; l < depth; ++l) {
    per_image += double(channels) * side * side;
    side = std::floor(side / 2);
    if (l + 1 < depth) channels *= 2;
  }
  per_image += double(channels) * side * side;
  // kActivationsPerElement: how many float tensors of a level's size a training step holds
  // at its peak (conv, relu, batch-norm and dropout outputs of two convolutions kept for
  // backward, the decoder's upsampled and concatenated inputs, and the gradients alive
  // during backward). Measured on the cpu backend with
  //   ichseg bench sweep --devices cpu --width 16 --sizes 32,64,128 --batches 2,10 --steps 1
  // (tensor_peak_mib less parameters and workspace, over 4 bytes x batch x per_image): 14 to
  // 19 at width 16, 11 at width 64 (64x64, batch 4); 24 is the largest with a quarter of
  // margin. The sweep writes estimate and measurement side by side in every row.
  constexpr double kActivationsPerElement = 24;
  // Parameters, their gradients and Adam's two moments.
  UnetConfig config;
  config.width = width;
  config.depth = depth;
  const double params = double(Unet(config, 0).parameter_count());
  // The largest im2col workspace (one image): the last decoder level, 9 * (2w + w) rows of
  // size^2 columns.
  const double workspace = 9.0 * 3.0 * width * double(size) * size;
  const double tensors =
      4.0 * (kActivationsPerElement * per_image * batch + 4.0 * params + workspace);
  // The cpu backend's caching allocator hands out blocks rounded up to its size classes
  // (kernels/cpu/cpu_backend.cpp, size_class: at most a quarter more above 1 MiB, 512 B or
  // 64 B granules below), and the peak counts the rounded sizes; 64 KiB covers the granules
  // of the step's small tensors.
  constexpr double kSizeClassSlack = 1.25, kSmallBlockSlack = 64.0 * 1024;
  return kSizeClassSlack * tensors + kSmallBlockSlack;
}

bool gpu_present() {
  return backend_available(Device::cuda(0));
}

}  // namespace ich::app
