// Splitting independent work over a few threads: what synth (one patient per worker) and
// prepare (every workers-th slice) share.
#pragma once

#include <functional>

namespace ich::data {

// Runs work(0), ..., work(workers - 1) at the same time: work(0) on the calling thread, the
// others on threads of their own. Waits for all of them, then rethrows the exception of the
// lowest-numbered worker that threw, if any, so an error is reported the same way whatever
// the number of workers. workers <= 1 runs work(0) alone.
void run_workers(int workers, const std::function<void(int worker)>& work);

}  // namespace ich::data
