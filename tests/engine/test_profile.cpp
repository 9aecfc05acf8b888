// core/profile: nested scopes split self and total time, calls are counted, a disabled
// profiler records nothing, and the report has a row per scope and the step.
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "core/profile.h"
#include "engine/tensor.h"
#include "kernels/backend.h"

namespace {

void busy_for(std::chrono::milliseconds ms) {
  const auto end = std::chrono::steady_clock::now() + ms;
  while (std::chrono::steady_clock::now() < end) {
  }
}

const ich::profile::Entry* find(const std::vector<ich::profile::Entry>& es, const char* name) {
  for (const auto& e : es)
    if (e.name == name) return &e;
  return nullptr;
}

}  // namespace

TEST_CASE("profile: nested scopes, self and total time", "[engine]") {
  ich::profile::set_enabled(true);
  ich::profile::reset();
  for (int i = 0; i < 2; ++i) {
    ICH_PROFILE_SCOPE("test.outer");
    busy_for(std::chrono::milliseconds(3));
    {
      ICH_PROFILE_SCOPE("test.inner");
      busy_for(std::chrono::milliseconds(6));
    }
  }
  const auto entries = ich::profile::snapshot();
  const auto* outer = find(entries, "test.outer");
  const auto* inner = find(entries, "test.inner");
  REQUIRE(outer != nullptr);
  REQUIRE(inner != nullptr);
  CHECK(outer->calls == 2);
  CHECK(inner->calls == 2);
  CHECK(inner->self_ms >= 12.0);
  CHECK(inner->self_ms == Approx(inner->total_ms));
  // The inner time is the outer's child time, counted once: total = self + children, exactly
  // (up to rounding), whatever the scheduler did; wall-clock bounds only from below.
  CHECK(outer->total_ms == Approx(outer->self_ms + inner->total_ms).margin(1e-6));
  CHECK(outer->self_ms >= 6.0);
  const std::string table = ich::profile::report(20.0, 2);
  CHECK(table.find("test.inner") != std::string::npos);
  CHECK(table.find("(outside primitives)") != std::string::npos);
  CHECK(table.find("peak RSS") != std::string::npos);
  CHECK(ich::profile::peak_rss_bytes() > 0);

  ich::profile::set_enabled(false);
  ich::profile::reset();
  { ICH_PROFILE_SCOPE("test.outer"); }
  CHECK(ich::profile::snapshot().empty());
}

TEST_CASE("profile: cpu primitives report themselves", "[engine]") {
  ich::profile::set_enabled(true);
  ich::profile::reset();
  ich::Tensor a = ich::Tensor::empty({1000}, ich::Device::cpu());
  a.backend().fill(a.data<float>(), 1000, 1.0f);
  const auto entries = ich::profile::snapshot();
  ich::profile::set_enabled(false);
  const auto* fill = find(entries, "fill");
  REQUIRE(fill != nullptr);
  CHECK(fill->calls == 1);
  CHECK(find(entries, "alloc") != nullptr);
}
