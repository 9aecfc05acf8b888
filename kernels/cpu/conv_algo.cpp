// The ICH_CONV_ALGO setting and the choice it makes for each convolution (conv_algo.h): which
// algorithm the CPU backend's 3x3 / stride 1 / pad 1 convolutions run. The algorithms are
// conv2d.cpp (im2col + GEMM) and conv2d_winograd*.cpp (Winograd F(4x4, 3x3)).
#include "kernels/cpu/conv_algo.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace ich::cpu {

ConvAlgo parse_conv_algo(const char* value) {
  if (std::strcmp(value, "auto") == 0) return ConvAlgo::automatic;
  if (std::strcmp(value, "im2col") == 0) return ConvAlgo::im2col;
  if (std::strcmp(value, "winograd") == 0) return ConvAlgo::winograd;
  ICH_FAIL("ICH_CONV_ALGO is '" << value << "'; use auto, im2col or winograd");
}

const char* conv_algo_name(ConvAlgo algo) {
  switch (algo) {
    case ConvAlgo::automatic:
      return "auto";
    case ConvAlgo::im2col:
      return "im2col";
    case ConvAlgo::winograd:
      return "winograd";
  }
  return "?";
}

namespace {

constexpr int kNoOverride = -1;
std::atomic<int> g_override{kNoOverride};

ConvAlgo from_environment() {
  // Read once; a bad value throws here and again on the next call (the static stays unset).
  static const ConvAlgo algo = [] {
    const char* v = std::getenv("ICH_CONV_ALGO");
    return v == nullptr || *v == '\0' ? ConvAlgo::automatic : parse_conv_algo(v);
  }();
  return algo;
}

}  // namespace

ConvAlgo conv_algo() {
  const int o = g_override.load(std::memory_order_relaxed);
  return o == kNoOverride ? from_environment() : static_cast<ConvAlgo>(o);
}

void set_conv_algo(ConvAlgo algo) {
  g_override.store(static_cast<int>(algo), std::memory_order_relaxed);
}

void clear_conv_algo_override() {
  g_override.store(kNoOverride, std::memory_order_relaxed);
}

bool winograd_eligible(const Conv2dShape& s) {
  return s.kh == 3 && s.kw == 3 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 1 &&
         s.pad_w == 1;
}

namespace {

// ICH_CONV_ALGO's choice for an eligible shape; auto takes Winograd from min_channels up.
bool winograd_chosen(const Conv2dShape& s, int min_channels) {
  if (!winograd_eligible(s)) return false;
  switch (conv_algo()) {
    case ConvAlgo::im2col:
      return false;
    case ConvAlgo::winograd:
      return true;
    case ConvAlgo::automatic:
      return std::min(s.c, s.k) >= min_channels;
  }
  return false;
}

}  // namespace

bool use_winograd(const Conv2dShape& s) {
  return winograd_chosen(s, kWinogradMinChannels);
}

bool use_winograd_weight(const Conv2dShape& s) {
  return winograd_chosen(s, kWinogradWeightMinChannels);
}

}  // namespace ich::cpu
