// The op table's race cases (tests/ops: every primitive that reduces, accumulates, gathers or
// shares memory between threads, on tiny shapes over several blocks) under ThreadSanitizer,
// through the parity harness: two emu workers, every CUDA thread a TSan fiber, and the
// 2-block small-grid target where blocks loop. A race (a missing barrier, a scatter without
// atomics) makes TSan report and fail the process (exit code 66), so the test fails; the
// harness also checks the numbers against the CPU reference. One test per four families: a
// process costs more than its cases under ThreadSanitizer.
// The CPU reference runs with one OpenMP thread: libgomp is not instrumented, so its own
// synchronisation would be invisible to TSan.
#include <omp.h>

#include "parity/parity_common.h"

namespace ich::test::parity {
namespace {

const bool registered = register_family_tests(
    "tsan", "[tsan]", [](const ops::OpEntry& e) { return !e.race.empty(); },
    [](const std::vector<const ops::OpEntry*>& entries) {
      omp_set_num_threads(1);
      for (const ops::OpEntry* e : entries) check_cases(e->race);
    },
    4);

}  // namespace
}  // namespace ich::test::parity
