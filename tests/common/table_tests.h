// Catch2 tests made from the op table (tests/ops/op_case.h) instead of one TEST_CASE each: a
// driver registers one test per family (or per few families) at start-up, so that a new entry
// or a new family runs without touching the drivers, and CTest still runs them in parallel.
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
// every family with at least one entry for which `has` is true; the test runs `body` on those
// entries. With families_per_test > 1, consecutive families share one test, named
// `prefix: family, family, ...` (where each process costs more than its cases, as under
// ThreadSanitizer). Call it from a namespace-scope initializer (as TEST_CASE does); returns
// true.
inline bool register_family_tests(
    const std::string& prefix, const std::string& tags,
    const std::function<bool(const ops::OpEntry&)>& has,
    const std::function<void(const std::vector<const ops::OpEntry*>&)>& body,
    size_t families_per_test = 1) {
  struct Group {
    std::vector<std::string> families;
    std::vector<const ops::OpEntry*> entries;
    std::string ops;
  };
  std::vector<Group> groups;
  for (const auto& [family, entries] : ops::op_families()) {
    Group one;
    for (const ops::OpEntry* e : entries) {
      if (!has(*e)) continue;
      one.entries.push_back(e);
      one.ops += (one.ops.empty() ? "" : ", ") + e->op;
    }
    if (one.entries.empty()) continue;
    if (groups.empty() || groups.back().families.size() >= families_per_test) groups.emplace_back();
    Group& g = groups.back();
    g.families.push_back(family);
    g.entries.insert(g.entries.end(), one.entries.begin(), one.entries.end());
    g.ops = one.ops;
  }
  for (const Group& g : groups) {
    std::string name = prefix.empty() ? "" : prefix + ": ";
    for (size_t i = 0; i < g.families.size(); ++i) name += (i ? ", " : "") + g.families[i];
    if (g.families.size() == 1) name += ": " + g.ops;
    // The registry keeps the invoker for the process, as for every TEST_CASE.
    Catch::AutoReg(new FunctionInvoker([body, entries = g.entries] { body(entries); }),
                   CATCH_INTERNAL_LINEINFO, Catch::StringRef(), Catch::NameAndTags{name, tags});
  }
  return true;
}

}  // namespace ich::test
