// ich_cuda_probe: what the CUDA runtime linked into the GPU bundle sees, in one line per
// fact, for the bundle's run.sh (scripts/gpu_run.sh):
//   cuda_probe runtime=13000 driver=13000 devices=1
//   device=0 cc=9.0 sms=132 clock_khz=1980000 mem_clock_khz=3201000 bus_bits=6144
//     mem_mib=143771 l2_bytes=62914560 fp32_lanes_per_sm=128 peak_fp32_gflops=66908
//     peak_dram_gbps=4917 name=NVIDIA H200
// (the device line is one line; the name, which may hold spaces, comes last). Exits 0 when at least
// one device is usable, 2 with the runtime's reason when none is ("no GPU"), so that a GPU that
// nvidia-smi shows but the runtime cannot use (a driver older than the runtime, say) is named, not
// silently skipped. The peaks are the chip's from its clocks: FP32 lanes x 2 (FMA) x SMs x the SM
// clock, and 2 (double data rate) x the memory clock x the bus width.
#include <cuda_runtime.h>

#include <cstdio>

namespace {

// FP32 (non-tensor-core) lanes per SM by compute capability (the CUDA programming guide's
// table of arithmetic throughput); 0 where this table does not know the chip.
int fp32_lanes_per_sm(int major, int minor) {
  if (major == 8 && minor == 0) return 64;                  // A100
  if (major == 7) return 64;                                // Volta, Turing
  if (major == 8 || major == 9 || major >= 10) return 128;  // GA10x, Ada, Hopper, Blackwell
  return 0;
}

int attribute(cudaDeviceAttr what, int device) {
  int v = 0;
  return cudaDeviceGetAttribute(&v, what, device) == cudaSuccess ? v : 0;
}

}  // namespace

int main() {
  int runtime = 0, driver = 0, count = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);  // 0 when no driver is installed
  const cudaError_t err = cudaGetDeviceCount(&count);
  std::printf("cuda_probe runtime=%d driver=%d devices=%d\n", runtime, driver,
              err == cudaSuccess ? count : 0);
  if (driver == 0) {  // cudaGetDeviceCount then says "insufficient driver", which misleads
    std::printf("cuda_probe: no usable GPU: no CUDA driver (libcuda.so.1 is not loadable)\n");
    return 2;
  }
  if (err != cudaSuccess || count == 0) {
    std::printf("cuda_probe: no usable GPU: %s: %s\n",
                err == cudaSuccess ? "cudaSuccess" : cudaGetErrorName(err),
                err == cudaSuccess ? "the runtime reports 0 devices" : cudaGetErrorString(err));
    return 2;
  }
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, d) != cudaSuccess) {
      std::printf("cuda_probe: device %d: cudaGetDeviceProperties failed\n", d);
      return 1;
    }
    const int clock_khz = attribute(cudaDevAttrClockRate, d);
    const int mem_clock_khz = attribute(cudaDevAttrMemoryClockRate, d);
    const int bus_bits = attribute(cudaDevAttrGlobalMemoryBusWidth, d);
    const int lanes = fp32_lanes_per_sm(p.major, p.minor);
    const double peak_gflops = 2.0 * lanes * p.multiProcessorCount * clock_khz * 1e-6;
    const double peak_gbps = 2.0 * mem_clock_khz * 1e3 * (bus_bits / 8.0) * 1e-9;
    std::printf(
        "device=%d cc=%d.%d sms=%d clock_khz=%d mem_clock_khz=%d bus_bits=%d mem_mib=%zu "
        "l2_bytes=%d fp32_lanes_per_sm=%d peak_fp32_gflops=%.0f peak_dram_gbps=%.0f name=%s\n",
        d, p.major, p.minor, p.multiProcessorCount, clock_khz, mem_clock_khz, bus_bits,
        p.totalGlobalMem / (1024 * 1024), p.l2CacheSize, lanes, peak_gflops, peak_gbps, p.name);
  }
  return 0;
}
