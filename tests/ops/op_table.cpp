// The op table: every entry of op_cases_*.cpp, and the lookups the drivers use.
#include "core/error.h"
#include "ops/op_case.h"

namespace ich::test::ops {

const std::vector<OpEntry>& op_table() {
  static const std::vector<OpEntry> table = [] {
    std::vector<OpEntry> all = detail::core_entries();
    for (OpEntry& e : detail::conv_entries()) all.push_back(std::move(e));
    return all;
  }();
  return table;
}

std::vector<std::pair<std::string, std::vector<const OpEntry*>>> op_families() {
  std::vector<std::pair<std::string, std::vector<const OpEntry*>>> families;
  for (const OpEntry& e : op_table()) {
    auto it = families.begin();
    while (it != families.end() && it->first != e.family) ++it;
    if (it == families.end()) it = families.insert(families.end(), {e.family, {}});
    it->second.push_back(&e);
  }
  return families;
}

const OpEntry& op_entry(const std::string& op) {
  for (const OpEntry& e : op_table())
    if (e.op == op) return e;
  ICH_FAIL("the op table has no entry '" << op << "'");
}

}  // namespace ich::test::ops
