// Adam over named parameters (torch.optim.Adam semantics, or AdamW with
// decoupled_weight_decay), through the backend's fused adam_step; and learning-rate
// schedules.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/nn.h"

namespace ich {

struct AdamOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  bool decoupled_weight_decay = false;  // false: L2 added to the gradient; true: AdamW
};

class Adam {
 public:
  Adam(NamedTensors params, AdamOptions options = {});

  // One update of every parameter that has a grad; parameters without one are skipped and
  // their step count does not advance (PyTorch). Moments are created at a parameter's
  // first update, on its device.
  void step();
  void zero_grad();

  float lr() const { return options_.lr; }
  void set_lr(float lr);
  const AdamOptions& options() const { return options_; }

  // State by name, for checkpoints: "<param>.exp_avg" and "<param>.exp_avg_sq" (float32, on
  // the parameter's device) and "<param>.step" (int64 (1) on the CPU), for every parameter
  // updated at least once.
  NamedTensors state() const;
  // Restores a state() of an optimiser over the same parameters (devices may differ).
  void load_state(const std::map<std::string, Tensor>& state);

 private:
  struct Slot {
    std::string name;
    Tensor param;
    Tensor exp_avg, exp_avg_sq;
    int64_t step = 0;
  };
  std::vector<Slot> slots_;
  AdamOptions options_;
};

enum class LrScheduleKind { constant, cosine, poly };

// lr(step) for step = 0 .. total_steps (clamped beyond):
//   constant: base_lr
//   cosine:   min_lr + (base_lr - min_lr) * (1 + cos(pi * step / total_steps)) / 2
//   poly:     min_lr + (base_lr - min_lr) * (1 - step / total_steps) ^ power
struct LrSchedule {
  LrScheduleKind kind = LrScheduleKind::constant;
  float base_lr = 1e-3f;
  int64_t total_steps = 1;
  float min_lr = 0.0f;
  float power = 0.9f;

  float at(int64_t step) const;
  // "constant", "cosine", "poly"; anything else throws ich::Error listing those.
  static LrScheduleKind parse_kind(const std::string& name);
  static const char* kind_name(LrScheduleKind kind);
};

}  // namespace ich
