// Where a tensor lives and which backend runs its primitives.
//   cpu       kernels/cpu, the reference backend
//   cuda      kernels/cuda compiled by nvcc, runs on a GPU
//   cuda-emu  the same kernels/cuda sources compiled by g++ with kernels/emu, runs on the CPU
#pragma once

#include <string>

namespace ich {

enum class DeviceKind { cpu, cuda, cuda_emu };

struct Device {
  DeviceKind kind = DeviceKind::cpu;
  int index = 0;

  static Device cpu() { return {DeviceKind::cpu, 0}; }
  static Device cuda(int index = 0) { return {DeviceKind::cuda, index}; }
  static Device cuda_emu() { return {DeviceKind::cuda_emu, 0}; }

  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  bool is_host_memory() const { return kind != DeviceKind::cuda; }

  // "cpu", "cuda:0", "cuda-emu"
  std::string str() const;
  // Accepts "cpu", "cuda", "cuda:N", "cuda-emu"; throws ich::Error otherwise.
  static Device parse(const std::string& s);
};

}  // namespace ich
