// Per-primitive profiler: scopes on a thread-local stack, totals in one locked map keyed by
// the scope's name (a string literal, so its address is stable).
#include "core/profile.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

namespace ich::profile {

namespace {

std::atomic<int> g_enabled{-1};  // -1: not read from the environment yet

struct Totals {
  int64_t calls = 0;
  int64_t self_ns = 0;
  int64_t total_ns = 0;
};

std::mutex g_mutex;
std::map<std::string, Totals>& totals() {
  static std::map<std::string, Totals> t;
  return t;
}

thread_local Scope* t_top = nullptr;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool enabled() {
  int e = g_enabled.load(std::memory_order_relaxed);
  if (e < 0) {
    const char* v = std::getenv("ICH_PROFILE");
    e = (v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0) ? 1 : 0;
    g_enabled.store(e, std::memory_order_relaxed);
  }
  return e == 1;
}

void set_enabled(bool on) {
  g_enabled.store(on ? 1 : 0, std::memory_order_relaxed);
}

void Scope::begin(const char* name) {
  name_ = name;
  active_ = true;
  parent_ = t_top;
  t_top = this;
  start_ns_ = now_ns();
}

void Scope::end() {
  const int64_t elapsed = now_ns() - start_ns_;
  t_top = parent_;
  if (parent_ != nullptr) parent_->child_ns_ += elapsed;
  std::lock_guard<std::mutex> lock(g_mutex);
  Totals& t = totals()[name_];
  ++t.calls;
  t.self_ns += elapsed - child_ns_;
  t.total_ns += elapsed;
}

void reset() {
  std::lock_guard<std::mutex> lock(g_mutex);
  totals().clear();
}

std::vector<Entry> snapshot() {
  std::vector<Entry> out;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    for (const auto& [name, t] : totals())
      out.push_back({name, t.calls, t.self_ns * 1e-6, t.total_ns * 1e-6});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Entry& a, const Entry& b) { return a.self_ms > b.self_ms; });
  return out;
}

int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return int64_t(u.ru_maxrss) * 1024;  // Linux reports KiB
}

std::string report(double step_ms, int64_t steps) {
  const std::vector<Entry> entries = snapshot();
  const double per = steps > 0 ? 1.0 / double(steps) : 0.0;
  std::string out;
  char line[160];
  std::snprintf(line, sizeof line, "%-32s %10s %12s %8s\n", "op", "calls/step", "self ms/step",
                "% step");
  out += line;
  double covered = 0.0;
  for (const Entry& e : entries) {
    const double ms = e.self_ms * per;
    covered += ms;
    std::snprintf(line, sizeof line, "%-32s %10.1f %12.2f %7.1f%%\n", e.name.c_str(),
                  double(e.calls) * per, ms, step_ms > 0 ? 100.0 * ms / step_ms : 0.0);
    out += line;
  }
  const double outside = step_ms - covered;
  std::snprintf(line, sizeof line, "%-32s %10s %12.2f %7.1f%%\n", "(outside primitives)", "",
                outside, step_ms > 0 ? 100.0 * outside / step_ms : 0.0);
  out += line;
  std::snprintf(line, sizeof line, "%-32s %10s %12.2f  peak RSS %.0f MiB\n", "step", "", step_ms,
                double(peak_rss_bytes()) / (1024.0 * 1024.0));
  out += line;
  return out;
}

}  // namespace ich::profile
