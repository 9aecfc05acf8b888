// Every primitive of the op table (tests/ops) on every target of parity_common.h against the
// CPU reference: one test per family, e.g. "activation: relu, sigmoid".
#include "parity/parity_common.h"

namespace ich::test::parity {
namespace {

const bool registered = register_case_tests("", "[parity]", &ops::OpEntry::parity);

}  // namespace
}  // namespace ich::test::parity
