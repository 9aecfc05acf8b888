#include "bench/harness/measurement.h"

#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <variant>

#include "bench/harness/process_runner.h"
#include "core/error.h"
#include "kernels/backend.h"
#include "models/unet.h"

namespace ich::bench {

namespace {

// The settings of BenchConfig as KEY=VALUE words, in the order to_args writes them.
struct ConfigKey {
  const char* key;
  std::variant<std::string BenchConfig::*, int BenchConfig::*, bool BenchConfig::*> member;
};
const ConfigKey kConfigKeys[] = {
    {"task", &BenchConfig::task},
    {"device", &BenchConfig::device},
    {"width", &BenchConfig::width},
    {"depth", &BenchConfig::depth},
    {"size", &BenchConfig::size},
    {"batch", &BenchConfig::batch},
    {"warmup", &BenchConfig::warmup},
    {"steps", &BenchConfig::steps},
    {"data_in_step", &BenchConfig::data_in_step},
    {"threads", &BenchConfig::threads},
    {"caching", &BenchConfig::caching},
};

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

// "tag k1=v1 k2=v2" (values without spaces) -> {k1: v1, k2: v2}
std::map<std::string, std::string> key_values_after_tag(const std::string& line) {
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

// Why a child that did not succeed failed, or "" when it exited 0.
std::string failure_of(const ChildOutcome& c, double timeout_s) {
  if (c.timed_out) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "timed out after %g s (--timeout-s)", timeout_s);
    return buf;
  }
  if (c.signal) {
    return std::string("killed by signal ") + std::to_string(c.signal) + " (" +
           strsignal(c.signal) + (c.signal == SIGKILL ? "; out of memory?" : "") + ")";
  }
  if (c.exit_code != 0) {
    const std::string line = last_line(c.err);
    return "exit " + std::to_string(c.exit_code) + (line.empty() ? "" : ": " + line);
  }
  return "";
}

// The result lines of a child's stdout into r; false when there is no ich-bench-result line.
bool parse_result_lines(const std::string& out, BenchResult* r) {
  std::istringstream lines(out);
  std::string line;
  bool found = false;
  while (std::getline(lines, line)) {
    if (line.rfind("ich-bench-peer\t", 0) == 0) {
      const auto f = split(line, '\t');
      if (f.size() == 4) r->peers.push_back({f[1], f[2], to_double(f[3])});
    } else if (line.rfind("ich-bench-result ", 0) == 0) {
      auto f = key_values_after_tag(line);
      for (const std::string& t : split(f["step_s"], ';'))
        if (!t.empty()) r->step_s.push_back(to_double(t));
      r->allocs_per_step = to_double(f["allocs_per_step"]);
      r->hits_per_step = to_double(f["hits_per_step"]);
      r->peak_bytes = to_double(f["peak_bytes"]);
      found = true;
    }
  }
  return found;
}

}  // namespace

std::vector<std::string> BenchConfig::to_args() const {
  std::vector<std::string> words;
  for (const ConfigKey& k : kConfigKeys) {
    std::string value;
    if (const auto* s = std::get_if<std::string BenchConfig::*>(&k.member))
      value = this->**s;
    else if (const auto* i = std::get_if<int BenchConfig::*>(&k.member))
      value = std::to_string(this->**i);
    else
      value = std::to_string(int(this->*std::get<bool BenchConfig::*>(k.member)));
    words.push_back(std::string(k.key) + "=" + value);
  }
  return words;
}

BenchConfig BenchConfig::from_args(const std::vector<std::string>& words) {
  BenchConfig c;
  for (const std::string& w : words) {
    const size_t eq = w.find('=');
    ICH_CHECK(eq != std::string::npos, "bench child: '" << w << "' is not KEY=VALUE");
    const std::string key = w.substr(0, eq), value = w.substr(eq + 1);
    const ConfigKey* found = nullptr;
    for (const ConfigKey& k : kConfigKeys)
      if (key == k.key) found = &k;
    ICH_CHECK(found, "bench child: unknown setting '" << key << "'");
    if (const auto* s = std::get_if<std::string BenchConfig::*>(&found->member))
      c.** s = value;
    else if (const auto* i = std::get_if<int BenchConfig::*>(&found->member))
      c.** i = parse_int(key, value);
    else
      c.*std::get<bool BenchConfig::*>(found->member) = parse_int(key, value) != 0;
  }
  ICH_CHECK(c.task == "train" || c.task == "peers", "bench child: unknown task '" << c.task << "'");
  ICH_CHECK(c.width >= 1 && c.size >= 8 && c.batch >= 1 && c.steps >= 1 && c.warmup >= 0,
            "bench child: width, batch, steps must be >= 1, size >= 8, warmup >= 0");
  return c;
}

std::vector<std::string> BenchConfig::environment() const {
  std::vector<std::string> env;
  if (threads > 0) {
    const std::string t = std::to_string(threads);
    env.push_back("OMP_NUM_THREADS=" + t);
    env.push_back("OPENBLAS_NUM_THREADS=" + t);
    env.push_back("ICH_EMU_WORKERS=" + t);
  }
  if (caching >= 0) env.push_back("ICH_CUDA_CACHING_ALLOCATOR=" + std::to_string(caching));
  return env;
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

BenchResult run_measurement(const BenchConfig& config, double timeout_s) {
  std::vector<std::string> args{"/proc/self/exe", "bench", "__child"};
  for (auto& a : config.to_args()) args.push_back(a);
  const ChildOutcome child =
      run_child_process(args, environment_with(config.environment()), timeout_s);
  BenchResult r;
  r.max_rss_bytes = child.max_rss_bytes;
  r.error = failure_of(child, timeout_s);
  if (!r.error.empty()) return r;
  if (!parse_result_lines(child.out, &r)) {
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

}  // namespace ich::bench
