#include "data/workers.h"

#include <algorithm>
#include <exception>
#include <thread>
#include <vector>

namespace ich::data {

void run_workers(int workers, const std::function<void(int worker)>& work) {
  workers = std::max(1, workers);
  std::vector<std::exception_ptr> errors(workers);
  const auto guarded = [&](int w) {
    try {
      work(w);
    } catch (...) {
      errors[w] = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  for (int w = 1; w < workers; ++w) threads.emplace_back(guarded, w);
  guarded(0);
  for (auto& t : threads) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace ich::data
