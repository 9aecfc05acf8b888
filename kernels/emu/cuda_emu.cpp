// cuda-emu's machinery, built once (library ich_kernels_emu): the fiber scheduler of a block,
// the worker pool that runs the blocks of a launch, and the runtime API as host operations.
// The vocabulary that kernels see is kernels/emu/cuda_emu.h.
//
//
// Execution model
//   A launch runs synchronously on the calling thread plus a pool of worker threads; block b
//   runs on worker b mod W (adjacent blocks on different workers). The threads of one block
//   are fibers (boost.context's fcontext: a switch costs ~10 ns; ucontext makes a system
//   call per switch) on that block's worker. A fiber runs until it finishes, reaches
//   __syncthreads() or a warp shuffle; then the scheduler runs the next one. A barrier
//   releases when every thread of the block waits at it; a warp shuffle releases when
//   every lane named in its mask has reached it, and then every lane reads the value its
//   source lane supplied at that same shuffle. Anything else that stops all fibers is a
//   deadlock, reported as a launch failure naming where the threads wait.
//
// Finding bugs deterministically
//   ICH_EMU_ORDER=forward|reverse|shuffled  the order in which the runnable threads of a
//       block are resumed (shuffled: seeded by ICH_EMU_SEED and the block index). A kernel
//       missing a __syncthreads() reads stale shared memory in at least one of the orders.
//   ICH_EMU_STRICT=1 (default)  a barrier at which threads wait at different __syncthreads()
//       lines, or one that some threads of the block have already exited, fails the launch
//       (undefined behaviour on a GPU). =0 lets exited threads count as arrived.
//   ThreadSanitizer builds: every CUDA thread is a TSan fiber, switched with no implied
//       synchronisation; __syncthreads() is the only happens-before edge between threads of
//       a block (shuffles exchange values, not memory order). So a missing barrier or a
//       non-atomic accumulation into shared or global memory is reported as a data race.
//   AddressSanitizer builds: device memory is host heap memory, so an out-of-bounds global
//       access is reported; fiber switches are annotated for ASan; the dynamic shared
//       memory of each block is its own heap block (overruns are caught) filled with 0xFF
//       bytes (NaN as float) so reads of unwritten shared memory show.
//
// Limits (what emu does not prove): speed; races that are benign under the fiber schedule
// outside TSan; the memory model beyond barriers and atomics. Static __shared__ arrays are
// `static thread_local`: one copy per worker thread, which keeps its contents from the
// previous block that worker ran (a kernel must not read shared memory it has not written).
// Fibers have small stacks (ICH_EMU_STACK_KB, default 64, 256 under sanitizers) with a
// guard page. Streams are accepted but every call is synchronous.
#include "core/ceil_div.h"
#include "kernels/emu/cuda_emu.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/context/detail/fcontext.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#if defined(__SANITIZE_THREAD__)
#define ICH_EMU_TSAN 1
#include <sanitizer/tsan_interface.h>
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
extern "C" void AnnotateIgnoreWritesBegin(const char* file, int line);
extern "C" void AnnotateIgnoreWritesEnd(const char* file, int line);
#endif
#if defined(__SANITIZE_ADDRESS__)
#define ICH_EMU_ASAN 1
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

// A recorded point in time (events are synchronous, as everything else).
struct ich_emu_event {
  std::chrono::steady_clock::time_point time;
  bool recorded = false;
};

namespace ich::emu::detail {

namespace {

namespace fc = boost::context::detail;

#if defined(ICH_EMU_TSAN)
// Emulator bookkeeping shared by a fiber and its scheduler is not kernel memory: TSan is
// told to ignore it, so that only the kernels' own accesses are checked.
struct TsanIgnoreScope {
  TsanIgnoreScope() {
    AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
    AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
  }
  ~TsanIgnoreScope() {
    AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
    AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
  }
};
#define ICH_EMU_INTERNAL ::ich::emu::detail::TsanIgnoreScope ich_emu_ignore_
void tsan_release(void* a) {
  __tsan_release(a);
}
void tsan_acquire(void* a) {
  __tsan_acquire(a);
}
#else
#define ICH_EMU_INTERNAL
void tsan_release(void*) {}
void tsan_acquire(void*) {}
#endif

// ---- settings (environment defaults; tests change them through the setters below)
int env_int(const char* name, int fallback) {
  const char* s = std::getenv(name);
  return s && *s ? std::atoi(s) : fallback;
}

Order env_order() {
  const char* s = std::getenv("ICH_EMU_ORDER");
  if (!s || !*s || std::strcmp(s, "forward") == 0) return Order::forward;
  if (std::strcmp(s, "reverse") == 0) return Order::reverse;
  if (std::strcmp(s, "shuffled") == 0 || std::strcmp(s, "shuffle") == 0) return Order::shuffled;
  std::fprintf(stderr, "cuda-emu: ICH_EMU_ORDER=%s is not forward, reverse or shuffled\n", s);
  std::abort();
}

struct Settings {
  std::atomic<int> order{static_cast<int>(env_order())};
  std::atomic<bool> strict{env_int("ICH_EMU_STRICT", 1) != 0};
  std::atomic<uint64_t> seed{static_cast<uint64_t>(env_int("ICH_EMU_SEED", 1))};
  std::atomic<int> workers{0};  // 0: not chosen yet
  size_t stack_bytes = size_t(env_int("ICH_EMU_STACK_KB",
#if defined(ICH_EMU_TSAN) || defined(ICH_EMU_ASAN)
                                      256
#else
                                      64
#endif
                                      )) *
                       1024;
};

Settings& settings() {
  static Settings s;
  return s;
}

int default_workers() {
  int n = env_int("ICH_EMU_WORKERS", 0);
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
#if defined(ICH_EMU_TSAN)
  if (n < 2) n = 2;  // blocks on two workers, so that races between blocks can show
#endif
  return n > 64 ? 64 : n;
}

// ---- the sticky-until-read error state of the host thread, as cudaGetLastError
struct ErrorState {
  cudaError_t code = cudaSuccess;
  std::string detail;
};
ErrorState& error_state() {
  static thread_local ErrorState e;
  return e;
}

cudaError_t set_error(cudaError_t code, std::string detail) {
  error_state().code = code;
  error_state().detail = std::move(detail);
  return code;
}

// ---- one CUDA thread of the resident block
enum class FiberState : int { runnable, at_barrier, at_warp, done };

struct Fiber {
  fc::fcontext_t context = nullptr;
  char* stack_base = nullptr;  // mmap'd, lowest page is a guard
  size_t stack_bytes = 0;
  uint3 thread_idx{0, 0, 0};
  int linear = 0;
  FiberState state = FiberState::done;
  const char* barrier_file = nullptr;
  int barrier_line = 0;
  // the warp shuffle this fiber waits at
  WarpOp warp_op = WarpOp::idx;
  unsigned warp_mask = 0;
  int warp_width = 32;
  int warp_arg = 0;
  uint32_t warp_value = 0;
  uint32_t warp_result = 0;
  const char* warp_file = nullptr;
  int warp_line = 0;
#if defined(ICH_EMU_TSAN)
  void* tsan_fiber = nullptr;
#endif
#if defined(ICH_EMU_ASAN)
  void* asan_fake_stack = nullptr;
#endif
};

// What a launch hands every worker.
struct Job {
  void (*body)(const void* call) = nullptr;  // runs the kernel with its arguments
  const void* call = nullptr;
  dim3 grid, block;
  size_t smem_bytes = 0;
  int workers = 1;
  Order order = Order::forward;
  bool strict = true;
  uint64_t seed = 1;
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::string error;

  void fail(const std::string& message) {
    std::lock_guard<std::mutex> lock(error_mutex);
    if (!failed.load()) error = message;
    failed.store(true);
  }
};

// The per-OS-thread state: the block it runs and that block's fibers.
struct Worker {
  std::vector<std::unique_ptr<Fiber>> fibers;
  std::vector<int> order;
  fc::fcontext_t scheduler_context = nullptr;
  Fiber* current = nullptr;
  Job* job = nullptr;
  uint3 block_idx{0, 0, 0};
  uint64_t barrier_generation = 0;
  bool block_failed = false;
  // Addresses that carry happens-before edges under TSan (unused otherwise): the scheduler
  // hands a block to its fibers, the fibers hand their results back, and barrier
  // generations alternate between two objects so that a fast thread's writes after one
  // barrier never reach a slow thread that has not yet left it.
  char block_start_sync = 0, block_end_sync = 0, barrier_sync[2] = {0, 0};
#if defined(ICH_EMU_TSAN)
  void* scheduler_tsan_fiber = nullptr;
#endif
#if defined(ICH_EMU_ASAN)
  void* scheduler_fake_stack = nullptr;
  const void* scheduler_stack_bottom = nullptr;
  size_t scheduler_stack_size = 0;
#endif

  ~Worker() {
    for (auto& f : fibers) {
      if (f->stack_base) munmap(f->stack_base, f->stack_bytes);
#if defined(ICH_EMU_TSAN)
      if (f->tsan_fiber) __tsan_destroy_fiber(f->tsan_fiber);
#endif
    }
  }
};

Worker& this_worker() {
  static thread_local Worker w;
  return w;
}

// ---- fiber switching

void resume(Worker& w, Fiber& f) {
  w.current = &f;
  kernel_view().thread_idx = f.thread_idx;
#if defined(ICH_EMU_ASAN)
  __sanitizer_start_switch_fiber(&w.scheduler_fake_stack, f.stack_base, f.stack_bytes);
#endif
#if defined(ICH_EMU_TSAN)
  __tsan_switch_to_fiber(f.tsan_fiber, __tsan_switch_to_fiber_no_sync);
#endif
  const fc::transfer_t back = fc::jump_fcontext(f.context, &w);
  f.context = back.fctx;
#if defined(ICH_EMU_ASAN)
  __sanitizer_finish_switch_fiber(w.scheduler_fake_stack, nullptr, nullptr);
#endif
}

// From a fiber to its scheduler; returns when the scheduler resumes this fiber.
// Bookkeeping written by a fiber is hidden from TSan (reads need not be: the scheduler's
// writes are hidden too). A finished fiber writes nothing here, so that it never switches
// away with TSan's ignores still enabled in its slot, which the next block reuses.
void yield_to_scheduler(Worker& w, bool finished) {
  Fiber* f = w.current;
#if defined(ICH_EMU_ASAN)
  __sanitizer_start_switch_fiber(finished ? nullptr : &f->asan_fake_stack, w.scheduler_stack_bottom,
                                 w.scheduler_stack_size);
#endif
#if defined(ICH_EMU_TSAN)
  __tsan_switch_to_fiber(w.scheduler_tsan_fiber, __tsan_switch_to_fiber_no_sync);
#endif
  const fc::transfer_t t = fc::jump_fcontext(w.scheduler_context, nullptr);
  ICH_EMU_INTERNAL;
  w.scheduler_context = t.fctx;
#if defined(ICH_EMU_ASAN)
  __sanitizer_finish_switch_fiber(f->asan_fake_stack, &w.scheduler_stack_bottom,
                                  &w.scheduler_stack_size);
#endif
  (void)f;
  (void)finished;
}

void fiber_entry(fc::transfer_t from) {
  Worker& w = *static_cast<Worker*>(from.data);
  {
    ICH_EMU_INTERNAL;
    w.scheduler_context = from.fctx;
#if defined(ICH_EMU_ASAN)
    __sanitizer_finish_switch_fiber(nullptr, &w.scheduler_stack_bottom, &w.scheduler_stack_size);
#endif
  }
  tsan_acquire(&w.block_start_sync);
  w.job->body(w.job->call);
  {
    ICH_EMU_INTERNAL;
    w.current->state = FiberState::done;
  }
  tsan_release(&w.block_end_sync);
  yield_to_scheduler(w, /*finished=*/true);
  std::abort();  // a finished fiber is never resumed
}

}  // namespace

// ---- barriers and warp shuffles, called from a fiber
void syncthreads(const char* file, int line) {
  Worker& w = this_worker();
  const uint64_t generation = w.barrier_generation;
  {
    ICH_EMU_INTERNAL;
    w.current->state = FiberState::at_barrier;
    w.current->barrier_file = file;
    w.current->barrier_line = line;
  }
  tsan_release(&w.barrier_sync[generation & 1]);
  yield_to_scheduler(w, false);
  tsan_acquire(&w.barrier_sync[generation & 1]);
}

uint32_t warp_exchange(WarpOp op, unsigned mask, uint32_t value, int arg, int width,
                       const char* file, int line) {
  if (width <= 0 || width > warpSize || (width & (width - 1)) != 0) {
    std::fprintf(stderr, "cuda-emu: shuffle width %d at %s:%d is not a power of two <= 32\n", width,
                 file, line);
    std::abort();
  }
  Worker& w = this_worker();
  {
    ICH_EMU_INTERNAL;
    Fiber& f = *w.current;
    f.state = FiberState::at_warp;
    f.warp_op = op;
    f.warp_mask = mask;
    f.warp_value = value;
    f.warp_arg = arg;
    f.warp_width = width;
    f.warp_file = file;
    f.warp_line = line;
  }
  yield_to_scheduler(w, false);
  ICH_EMU_INTERNAL;
  return w.current->warp_result;
}

namespace {

// ---- the scheduler of one block
std::string where(const char* file, int line) {
  std::ostringstream os;
  os << (file ? file : "?") << ":" << line;
  return os.str();
}

void block_fail(Worker& w, const std::string& what) {
  std::ostringstream os;
  os << what << " (block " << w.block_idx.x << "," << w.block_idx.y << "," << w.block_idx.z
     << " of grid " << w.job->grid.x << "x" << w.job->grid.y << "x" << w.job->grid.z << ", block "
     << w.job->block.x << "x" << w.job->block.y << "x" << w.job->block.z << ")";
  w.job->fail(os.str());
  w.block_failed = true;
}

void prepare_fibers(Worker& w, int threads) {
  const size_t stack_bytes = settings().stack_bytes;
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  while (int(w.fibers.size()) < threads) {
    auto f = std::make_unique<Fiber>();
    f->stack_bytes = stack_bytes + page;
    void* base = mmap(nullptr, f->stack_bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
      std::fprintf(stderr, "cuda-emu: cannot map a %zu-byte fiber stack\n", f->stack_bytes);
      std::abort();
    }
    mprotect(base, page, PROT_NONE);  // overflow faults instead of corrupting a neighbour
    f->stack_base = static_cast<char*>(base);
#if defined(ICH_EMU_TSAN)
    f->tsan_fiber = __tsan_create_fiber(0);
#endif
    w.fibers.push_back(std::move(f));
  }
}

// Releases the warp shuffles whose lanes have all arrived; returns whether any did.
bool release_warps(Worker& w, int threads) {
  bool released = false;
  for (int first = 0; first < threads && !w.block_failed; first += warpSize) {
    const int lanes = std::min(warpSize, threads - first);
    int waiting = -1;
    for (int lane = 0; lane < lanes; ++lane)
      if (w.fibers[first + lane]->state == FiberState::at_warp) {
        waiting = lane;
        break;
      }
    if (waiting < 0) continue;
    const Fiber& ref = *w.fibers[first + waiting];
    const unsigned mask = ref.warp_mask;
    if (lanes < warpSize && (mask >> lanes) != 0) {
      block_fail(
          w, "warp shuffle at " + where(ref.warp_file, ref.warp_line) +
                 " names lanes that do not exist in the block's last, partial warp "
                 "(mask 0x" +
                 [&] {
                   std::ostringstream o;
                   o << std::hex << mask;
                   return o.str();
                 }() +
                 ")");
      return false;
    }
    bool all_arrived = true;
    for (int lane = 0; lane < lanes; ++lane) {
      if (!(mask >> lane & 1u)) continue;
      const Fiber& f = *w.fibers[first + lane];
      if (f.state == FiberState::done) {
        block_fail(w, "warp shuffle at " + where(ref.warp_file, ref.warp_line) + ": lane " +
                          std::to_string(lane) + " of warp " + std::to_string(first / warpSize) +
                          " is named in the mask but has exited");
        return false;
      }
      if (f.state != FiberState::at_warp) {
        all_arrived = false;
        continue;
      }
      if (f.warp_mask != mask || f.warp_op != ref.warp_op || f.warp_width != ref.warp_width ||
          (w.job->strict && f.warp_line != ref.warp_line)) {
        block_fail(w, "lanes of warp " + std::to_string(first / warpSize) +
                          " wait at different shuffles: " + where(ref.warp_file, ref.warp_line) +
                          " and " + where(f.warp_file, f.warp_line));
        return false;
      }
    }
    if (!all_arrived) continue;
    for (int lane = 0; lane < lanes; ++lane) {
      if (!(mask >> lane & 1u)) continue;
      Fiber& f = *w.fibers[first + lane];
      const int width = f.warp_width;
      const int group = lane - lane % width;  // first lane of this lane's width-group
      int src = lane;
      switch (f.warp_op) {
        case WarpOp::idx:
          src = group + ((f.warp_arg % width) + width) % width;
          break;
        case WarpOp::down:
          src = (lane % width) + f.warp_arg < width ? lane + f.warp_arg : lane;
          break;
        case WarpOp::up:
          src = (lane % width) - f.warp_arg >= 0 ? lane - f.warp_arg : lane;
          break;
        case WarpOp::bfly: {
          const int target = lane ^ f.warp_arg;
          src = target < group + width ? target : lane;  // later groups are not visible
          break;
        }
      }
      if (src >= lanes || !(mask >> src & 1u)) {
        block_fail(w, "warp shuffle at " + where(f.warp_file, f.warp_line) + ": lane " +
                          std::to_string(lane) + " reads lane " + std::to_string(src) +
                          ", which is not in the mask");
        return false;
      }
      f.warp_result = w.fibers[first + src]->warp_value;
    }
    for (int lane = 0; lane < lanes; ++lane)
      if (mask >> lane & 1u) w.fibers[first + lane]->state = FiberState::runnable;
    released = true;
  }
  return released;
}

// Releases the block barrier when every live thread waits at it; returns whether it did.
bool release_barrier(Worker& w, int threads) {
  int at_barrier = 0, done = 0;
  const Fiber* first_waiting = nullptr;
  for (int t = 0; t < threads; ++t) {
    const Fiber& f = *w.fibers[t];
    if (f.state == FiberState::at_barrier) {
      ++at_barrier;
      if (!first_waiting) first_waiting = &f;
    } else if (f.state == FiberState::done) {
      ++done;
    }
  }
  if (at_barrier == 0 || at_barrier + done != threads) return false;
  if (w.job->strict) {
    if (done > 0) {
      block_fail(w, std::to_string(done) + " thread(s) exited while " + std::to_string(at_barrier) +
                        " wait at __syncthreads() at " +
                        where(first_waiting->barrier_file, first_waiting->barrier_line) +
                        " (a barrier must be reached by every thread of the block)");
      return false;
    }
    for (int t = 0; t < threads; ++t) {
      const Fiber& f = *w.fibers[t];
      if (f.barrier_line != first_waiting->barrier_line ||
          std::strcmp(f.barrier_file, first_waiting->barrier_file) != 0) {
        block_fail(w, "threads wait at different __syncthreads(): thread " +
                          std::to_string(first_waiting->linear) + " at " +
                          where(first_waiting->barrier_file, first_waiting->barrier_line) +
                          ", thread " + std::to_string(f.linear) + " at " +
                          where(f.barrier_file, f.barrier_line));
        return false;
      }
    }
  }
  for (int t = 0; t < threads; ++t)
    if (w.fibers[t]->state == FiberState::at_barrier) w.fibers[t]->state = FiberState::runnable;
  ++w.barrier_generation;
  return true;
}

std::string describe_deadlock(Worker& w, int threads) {
  std::ostringstream os;
  os << "deadlock: no thread can proceed;";
  int shown = 0;
  for (int t = 0; t < threads && shown < 4; ++t) {
    const Fiber& f = *w.fibers[t];
    if (f.state == FiberState::at_barrier) {
      os << " thread " << t << " waits at __syncthreads() " << where(f.barrier_file, f.barrier_line)
         << ";";
      ++shown;
    } else if (f.state == FiberState::at_warp) {
      os << " thread " << t << " waits at a warp shuffle " << where(f.warp_file, f.warp_line)
         << " for lanes of mask 0x" << std::hex << f.warp_mask << std::dec << ";";
      ++shown;
    }
  }
  return os.str();
}

void run_block(Worker& w, uint3 block_idx) {
  ICH_EMU_INTERNAL;
  Job& job = *w.job;
  const int bx = int(job.block.x), by = int(job.block.y);
  const int threads = bx * by * int(job.block.z);
  prepare_fibers(w, threads);
  w.block_idx = block_idx;
  kernel_view().block_idx = block_idx;
  w.block_failed = false;
  w.barrier_generation = 0;
  w.order.resize(threads);
  for (int t = 0; t < threads; ++t) {
    Fiber& f = *w.fibers[t];
    f.linear = t;
    f.thread_idx = uint3{unsigned(t % bx), unsigned((t / bx) % by), unsigned(t / (bx * by))};
    f.state = FiberState::runnable;
#if defined(ICH_EMU_ASAN)
    ASAN_UNPOISON_MEMORY_REGION(f.stack_base, f.stack_bytes);  // frames of earlier blocks
#endif
    f.context =
        fc::make_fcontext(f.stack_base + f.stack_bytes, settings().stack_bytes, &fiber_entry);
    w.order[t] = job.order == Order::reverse ? threads - 1 - t : t;
  }
  void* smem = nullptr;
  if (job.smem_bytes > 0) {
    smem = std::aligned_alloc(16, round_up(job.smem_bytes, 16));
    std::memset(smem, 0xFF, job.smem_bytes);  // NaN as float: unwritten shared memory shows
  }
  kernel_view().dynamic_smem = smem;
  const uint64_t block_linear =
      block_idx.x + uint64_t(job.grid.x) * (block_idx.y + uint64_t(job.grid.y) * block_idx.z);
  uint64_t rng =
      (job.seed + 1) * 0x9E3779B97F4A7C15ull ^ (block_linear + 1) * 0xD1B54A32D192ED03ull;
  tsan_release(&w.block_start_sync);

  while (!w.block_failed && !job.failed.load(std::memory_order_relaxed)) {
    if (job.order == Order::shuffled)
      for (int t = threads - 1; t > 0; --t) {  // Fisher-Yates on a xorshift stream
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::swap(w.order[t], w.order[rng % uint64_t(t + 1)]);
      }
    for (int i = 0; i < threads; ++i) {
      Fiber& f = *w.fibers[w.order[i]];
      if (f.state == FiberState::runnable) resume(w, f);
    }
    bool all_done = true;
    for (int t = 0; t < threads; ++t) all_done = all_done && w.fibers[t]->state == FiberState::done;
    if (all_done) break;
    const bool warps = release_warps(w, threads);
    if (w.block_failed) break;
    const bool barrier = !warps && release_barrier(w, threads);
    if (w.block_failed) break;
    if (!warps && !barrier) block_fail(w, describe_deadlock(w, threads));
  }
  tsan_acquire(&w.block_end_sync);
  if (w.block_failed) {
#if defined(ICH_EMU_TSAN)
    // Fibers abandoned mid-kernel keep a stale shadow call stack: start them afresh.
    for (int t = 0; t < threads; ++t) {
      __tsan_destroy_fiber(w.fibers[t]->tsan_fiber);
      w.fibers[t]->tsan_fiber = __tsan_create_fiber(0);
    }
#endif
  }
  kernel_view().dynamic_smem = nullptr;
  std::free(smem);
}

// Runs blocks worker_index, worker_index + W, ... of the job on the calling thread.
void run_blocks(Job& job, int worker_index) {
  ICH_EMU_INTERNAL;  // the worker's bookkeeping, read by its fibers
  Worker& w = this_worker();
  w.job = &job;
  kernel_view().block_dim = job.block;
  kernel_view().grid_dim = job.grid;
#if defined(ICH_EMU_TSAN)
  w.scheduler_tsan_fiber = __tsan_get_current_fiber();
#endif
  const uint64_t gx = job.grid.x, gy = job.grid.y, gz = job.grid.z;
  const uint64_t total = gx * gy * gz;
  for (uint64_t b = uint64_t(worker_index); b < total; b += uint64_t(job.workers)) {
    if (job.failed.load(std::memory_order_relaxed)) break;
    run_block(w, uint3{unsigned(b % gx), unsigned((b / gx) % gy), unsigned(b / (gx * gy))});
  }
  w.job = nullptr;
}

// ---- the worker pool: threads 1..W-1; the launching thread is worker 0
class Pool {
 public:
  static Pool& get() {
    static Pool* pool = new Pool;  // never destroyed: its threads may outlive static destructors
    return *pool;
  }

  void run(Job& job) {
    std::lock_guard<std::mutex> launch_lock(launch_mutex_);
    ensure_threads(job.workers - 1);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &job;
      pending_ = job.workers - 1;
      ++generation_;
    }
    if (job.workers > 1) work_cv_.notify_all();
    run_blocks(job, 0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [&] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void ensure_threads(int n) {
    while (int(threads_.size()) < n) {
      const int index = int(threads_.size()) + 1;
      threads_.emplace_back([this, index] { loop(index); });
      threads_.back().detach();
    }
  }

  void loop(int index) {
    uint64_t seen = 0;
    for (;;) {
      Job* job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        work_cv_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        // Decided under the lock: a job this thread does not take part in may end (and
        // leave the launching thread's stack) as soon as the lock is released.
        job = job_ != nullptr && index < job_->workers ? job_ : nullptr;
      }
      if (job == nullptr) continue;
      run_blocks(*job, index);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) done_cv_.notify_all();
    }
  }

  std::mutex launch_mutex_, mutex_;
  std::condition_variable work_cv_, done_cv_;
  std::vector<std::thread> threads_;
  Job* job_ = nullptr;
  int pending_ = 0;
  uint64_t generation_ = 0;
};

}  // namespace

cudaError_t run_grid(void (*body)(const void*), const void* call, dim3 grid, dim3 block,
                     size_t smem_bytes) {
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || block.x == 0 || block.y == 0 || block.z == 0 ||
      threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64 || grid.y > 65535 ||
      grid.z > 65535 || grid.x > 2147483647u) {
    std::ostringstream os;
    os << "invalid launch configuration: grid " << grid.x << "x" << grid.y << "x" << grid.z
       << ", block " << block.x << "x" << block.y << "x" << block.z
       << " (a block holds 1 to 1024 threads, block.z <= 64, grid.y and grid.z <= 65535)";
    return set_error(cudaErrorInvalidConfiguration, os.str());
  }
  if (smem_bytes > 48 * 1024)
    return set_error(cudaErrorInvalidValue,
                     "dynamic shared memory of " + std::to_string(smem_bytes) +
                         " bytes exceeds the 48 KiB a launch gets without opting in");
  Settings& s = settings();
  int workers = s.workers.load();
  if (workers == 0) {
    workers = default_workers();
    s.workers.store(workers);
  }
  Job job;
  job.body = body;
  job.call = call;
  job.grid = grid;
  job.block = block;
  job.smem_bytes = smem_bytes;
  const uint64_t blocks = uint64_t(grid.x) * grid.y * grid.z;
  job.workers = int(blocks < uint64_t(workers) ? blocks : uint64_t(workers));
  job.order = static_cast<Order>(s.order.load());
  job.strict = s.strict.load();
  job.seed = s.seed.load();
  Pool::get().run(job);
  if (job.failed.load())
    return set_error(cudaErrorLaunchFailure, "kernel failed in cuda-emu: " + job.error);
  return cudaSuccess;
}

}  // namespace ich::emu::detail

namespace ich::emu {
// ---- settings for tests and tools
void set_order(Order order) {
  detail::settings().order.store(static_cast<int>(order));
}
Order order() {
  return static_cast<Order>(detail::settings().order.load());
}
void set_strict(bool strict) {
  detail::settings().strict.store(strict);
}
bool strict() {
  return detail::settings().strict.load();
}
void set_seed(uint64_t seed) {
  detail::settings().seed.store(seed);
}
void set_workers(int workers) {
  detail::settings().workers.store(workers < 1 ? 1 : workers);
}
int workers() {
  int w = detail::settings().workers.load();
  return w > 0 ? w : detail::default_workers();
}

}  // namespace ich::emu

// ---- the runtime API, as host operations on one emulated device
cudaError_t cudaGetLastError() {
  const cudaError_t e = ::ich::emu::detail::error_state().code;
  ::ich::emu::detail::error_state().code = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() {
  return ::ich::emu::detail::error_state().code;
}
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration:
      return "cudaErrorInvalidConfiguration";
    case cudaErrorNoDevice:
      return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice:
      return "cudaErrorInvalidDevice";
    case cudaErrorNotReady:
      return "cudaErrorNotReady";
    case cudaErrorLaunchFailure:
      return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}
// The detail of the host thread's most recent failure when it is of this code.
const char* cudaGetErrorString(cudaError_t e) {
  const auto& s = ::ich::emu::detail::error_state();
  if (e != cudaSuccess && !s.detail.empty()) return s.detail.c_str();
  return cudaGetErrorName(e);
}
cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  return device == 0
             ? cudaSuccess
             : ::ich::emu::detail::set_error(cudaErrorInvalidDevice, "cuda-emu has one device, 0");
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  // posix_memalign of exactly `bytes`, so that ASan's redzone starts right at the end.
  if (posix_memalign(ptr, 256, bytes == 0 ? 1 : bytes) != 0) {
    *ptr = nullptr;
    return ::ich::emu::detail::set_error(
        cudaErrorMemoryAllocation, "out of host memory for " + std::to_string(bytes) + " bytes");
  }
  return cudaSuccess;
}
cudaError_t cudaFree(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  if (bytes) std::memset(dst, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) {
  return cudaMemset(dst, value, bytes);
}
cudaError_t cudaDeviceSynchronize() {
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  *stream = new ich_emu_stream;
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  return cudaStreamCreate(stream);
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* event) {
  *event = new ich_emu_event;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  event->time = std::chrono::steady_clock::now();
  event->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) {
  return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t) {
  return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!start->recorded || !end->recorded)
    return ::ich::emu::detail::set_error(cudaErrorInvalidValue, "event was not recorded");
  *ms = std::chrono::duration<float, std::milli>(end->time - start->time).count();
  return cudaSuccess;
}
