// A per-primitive wall-clock profiler for the CPU training step, off unless ICH_PROFILE=1.
//
// A primitive opens an ICH_PROFILE_SCOPE("name") at its top. Scopes nest: a scope's self
// time excludes the scopes opened inside it (conv2d_forward's time does not include the
// gemm it calls), so the self times of a step add up to at most the step. Only the thread
// that opens a scope is timed (OpenMP work inside the scope counts as that scope's time).
// When disabled a scope costs one load of a cached flag.
//
//   ICH_PROFILE=1 build/bench/ich_bench --benchmark_filter='UnetTrainStep/cpu/width:64'
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ich::profile {

bool enabled();             // ICH_PROFILE is set and not "0" (read once)
void set_enabled(bool on);  // for tests and tools that turn it on without the environment

struct Entry {
  std::string name;
  int64_t calls = 0;
  double self_ms = 0.0;   // excluding nested scopes
  double total_ms = 0.0;  // including nested scopes
};

void reset();
std::vector<Entry> snapshot();  // sorted by self time, largest first

// A table of `op calls/step self-ms/step %-of-step`, with a row for the time outside every
// scope ("(outside primitives)") and the process's peak resident set size.
std::string report(double step_ms, int64_t steps);

// Peak resident set size of this process in bytes (getrusage).
int64_t peak_rss_bytes();

class Scope {
 public:
  explicit Scope(const char* name) {
    if (enabled()) begin(name);
  }
  ~Scope() {
    if (active_) end();
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  void begin(const char* name);
  void end();
  const char* name_ = nullptr;
  bool active_ = false;
  int64_t start_ns_ = 0;
  int64_t child_ns_ = 0;
  Scope* parent_ = nullptr;
};

}  // namespace ich::profile

#define ICH_PROFILE_CONCAT_(a, b) a##b
#define ICH_PROFILE_CONCAT(a, b) ICH_PROFILE_CONCAT_(a, b)
#define ICH_PROFILE_SCOPE(name) \
  ::ich::profile::Scope ICH_PROFILE_CONCAT(ich_profile_scope_, __LINE__)(name)
