// Catch2 tests made from the op table (tests/ops/op_case.h) instead of one TEST_CASE each: a
// driver registers one test per family at start-up, so that a new entry (or a new family)
// runs without touching the drivers, and CTest still sees one test per family.
#pragma once

#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "ops/op_case.h"

namespace ich::test {

class FunctionInvoker : public Catch::ITestInvoker {
 public:
  explicit FunctionInvoker(std::function<void()> body) : body_(std::move(body)) {}
  void invoke() const override { body_(); }

 private:
  std::function<void()> body_;
};

// Registers a test `prefix: family: op, op` (`family: op, op` with no prefix) with `tags` for
// every family with at least one
// entry for which `has` is true; the test runs `body` on those entries. Call it from a
// namespace-scope initializer (as TEST_CASE does); returns true.
inline bool register_family_tests(
    const std::string& prefix, const std::string& tags,
    const std::function<bool(const ops::OpEntry&)>& has,
    const std::function<void(const std::vector<const ops::OpEntry*>&)>& body) {
  for (const auto& [family, entries] : ops::op_families()) {
    std::vector<const ops::OpEntry*> chosen;
    std::string ops;
    for (const ops::OpEntry* e : entries) {
      if (!has(*e)) continue;
      chosen.push_back(e);
      ops += (ops.empty() ? "" : ", ") + e->op;
    }
    if (chosen.empty()) continue;
    // The registry keeps the invoker for the process, as for every TEST_CASE.
    Catch::AutoReg(
        new FunctionInvoker([body, chosen] { body(chosen); }), CATCH_INTERNAL_LINEINFO,
        Catch::StringRef(),
        Catch::NameAndTags{(prefix.empty() ? "" : prefix + ": ") + family + ": " + ops, tags});
  }
  return true;
}

}  // namespace ich::test
