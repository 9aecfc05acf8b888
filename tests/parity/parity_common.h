// The parity harness (the idea of ggml's test-backend-ops) for the op table's cases
// (tests/ops/op_case.h).
//
// A case asks a ParityRun for its buffers and returns its call. The harness runs it once on
// the CPU reference and once on every target:
//   cuda-emu            when the build has it, with the default grids
//   cuda-emu small-grid the same with every 1-D grid capped at 2 blocks, so grid-stride
//                       loops must do the work (a kernel that assumes one thread per
//                       element fails here)
//   cuda:0, cuda:0 small-grid  when a GPU is present (otherwise a message says so, once)
// and compares every output with the reference: floats by NMSE against the case's ceiling
// (NaN or Inf on either side always fails), integers exactly. Every buffer carries guard
// elements on both sides, checked after the run (an overrun fails the case, on the CPU
// too), outputs start as NaN so an element a kernel forgets to write fails, inputs must
// come back unchanged, and a scratch buffer (a workspace) only has its guards checked.
#pragma once
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/gradcheck.h"
#include "common/table_tests.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_options.h"
#include "ops/op_case.h"

namespace ich::test::parity {

using ops::ElementType;
using ops::OpCase;
using ops::Role;

constexpr size_t kGuardBytes = 256;  // on each side of every buffer
constexpr unsigned char kGuardByte = 0xA5;

// One device buffer with guard bytes on both sides; holds its initial contents.
class GuardedBuffer {
 public:
  GuardedBuffer(Backend& backend, Role role, ElementType type, size_t elem_bytes, const void* init,
                size_t count)
      : backend_(backend), role_(role), type_(type), elem_bytes_(elem_bytes), count_(count) {
    const size_t bytes = count * elem_bytes;
    initial_.assign(static_cast<const unsigned char*>(init),
                    static_cast<const unsigned char*>(init) + bytes);
    std::vector<unsigned char> host(bytes + 2 * kGuardBytes, kGuardByte);
    if (bytes > 0) std::memcpy(host.data() + kGuardBytes, init, bytes);  // init may be null
    base_ = static_cast<unsigned char*>(backend.alloc(host.size()));
    backend.copy_from_host(base_, host.data(), host.size());
  }
  ~GuardedBuffer() { backend_.free(base_); }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;

  void* data() { return base_ + kGuardBytes; }
  Role role() const { return role_; }
  ElementType type() const { return type_; }
  size_t count() const { return count_; }
  const std::vector<unsigned char>& initial() const { return initial_; }

  // Copies the contents back; `problem` names a damaged guard.
  std::vector<unsigned char> download(std::string* problem) const {
    std::vector<unsigned char> host(count_ * elem_bytes_ + 2 * kGuardBytes);
    backend_.copy_to_host(host.data(), base_, host.size());
    for (size_t i = 0; i < kGuardBytes; ++i) {
      if (host[i] != kGuardByte) {
        *problem = "the guard before the buffer was overwritten at byte -" +
                   std::to_string(kGuardBytes - i);
        break;
      }
      if (host[host.size() - kGuardBytes + i] != kGuardByte) {
        *problem = "the guard after the buffer was overwritten at byte +" + std::to_string(i);
        break;
      }
    }
    return std::vector<unsigned char>(host.begin() + kGuardBytes, host.end() - kGuardBytes);
  }

 private:
  Backend& backend_;
  Role role_;
  ElementType type_;
  size_t elem_bytes_, count_;
  std::vector<unsigned char> initial_;
  unsigned char* base_ = nullptr;
};

// What a case sees: the backend and the guarded buffers it asks for, in order.
class ParityRun : public ops::OpRun {
 public:
  explicit ParityRun(Backend& backend) : OpRun(backend) {}
  std::vector<std::unique_ptr<GuardedBuffer>> buffers;

 protected:
  void* allocate(Role role, ElementType type, size_t elem_bytes, const void* init,
                 size_t count) override {
    buffers.push_back(
        std::make_unique<GuardedBuffer>(backend, role, type, elem_bytes, init, count));
    return buffers.back()->data();
  }
};

struct Target {
  std::string label;
  Backend* backend;
};

// The backends under test (see the top of this file). Instances with non-default options
// are built once and kept for the whole test process.
inline std::vector<Target> targets() {
  static std::vector<std::unique_ptr<Backend>> owned;
  static std::vector<Target> list;
  static bool built = false;
  if (built) return list;
  built = true;
  CudaBackendOptions small_grid = CudaBackendOptions::from_environment();
  small_grid.max_blocks = 2;
#ifdef ICH_HAVE_CUDA_EMU
  list.push_back({"cuda-emu", &backend_for(Device::cuda_emu())});
  owned.push_back(make_cuda_emu_backend_with(small_grid));
  list.push_back({"cuda-emu small-grid", owned.back().get()});
#endif
  if (backend_available(Device::cuda(0))) {
#ifdef ICH_HAVE_CUDA
    list.push_back({"cuda:0", &backend_for(Device::cuda(0))});
    owned.push_back(make_cuda_backend_with(0, small_grid));
    list.push_back({"cuda:0 small-grid", owned.back().get()});
#endif
  } else {
    WARN(
        "parity: no GPU present (or the build has no nvcc flavour): the cuda backend is not "
        "tested here, only cuda-emu");
  }
  return list;
}

inline std::string describe(const std::string& case_name, const std::string& target, size_t index) {
  std::ostringstream os;
  os << case_name << " on " << target << ", buffer " << index;
  return os.str();
}

// Runs one case on the reference and every target, with Catch2 assertions per output.
inline void check_case(const OpCase& c) {
  Backend& cpu = backend_for(Device::cpu());
  ParityRun reference(cpu);
  c.setup(reference)();
  std::vector<std::vector<unsigned char>> expected;
  for (size_t i = 0; i < reference.buffers.size(); ++i) {
    std::string problem;
    expected.push_back(reference.buffers[i]->download(&problem));
    INFO(describe(c.name, "cpu", i));
    INFO(problem);
    CHECK(problem.empty());
  }
  const std::vector<Target> list = targets();
  REQUIRE(!list.empty());
  for (const Target& target : list) {
    ParityRun run(*target.backend);
    c.setup(run)();
    REQUIRE(run.buffers.size() == reference.buffers.size());
    for (size_t i = 0; i < run.buffers.size(); ++i) {
      const GuardedBuffer& buffer = *run.buffers[i];
      std::string problem;
      const std::vector<unsigned char> got = buffer.download(&problem);
      INFO(describe(c.name, target.label, i));
      INFO(problem);
      CHECK(problem.empty());
      switch (buffer.role()) {
        case Role::scratch:
          continue;  // a workspace: its contents are no result
        case Role::input:
          CHECK(got == buffer.initial());  // inputs are read-only
          continue;
        case Role::output:
        case Role::inout:
          break;
      }
      if (buffer.type() == ElementType::f32) {
        const double error =
            nmse(reinterpret_cast<const float*>(got.data()),
                 reinterpret_cast<const float*>(expected[i].data()), buffer.count());
        INFO("NMSE " << error << " (ceiling " << c.max_nmse << ")");
        CHECK(error <= c.max_nmse);
      } else {
        size_t mismatches = 0;
        for (size_t b = 0; b < got.size(); ++b) mismatches += got[b] != expected[i][b];
        INFO(mismatches << " differing bytes");
        CHECK(mismatches == 0);
      }
    }
  }
}

inline void check_cases(const std::vector<OpCase>& cases) {
  for (const OpCase& c : cases) {
    SECTION(c.name) {
      check_case(c);
    }
  }
}

// One test per family of the op table running the cases `member` picks from each entry
// (tests/parity: the parity cases; tests/tsan: the race cases).
inline bool register_case_tests(const std::string& prefix, const std::string& tags,
                                std::vector<OpCase> ops::OpEntry::*member) {
  return register_family_tests(
      prefix, tags, [member](const ops::OpEntry& e) { return !(e.*member).empty(); },
      [member](const std::vector<const ops::OpEntry*>& entries) {
        for (const ops::OpEntry* e : entries) check_cases(e->*member);
      });
}

}  // namespace ich::test::parity
