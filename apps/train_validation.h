// The loss a run trains on, and the validation at the end of every epoch.
//
// Validation scores every slice of the validation split on whole slices (by sliding window
// when the run trains on patches), as `ichseg eval` does: val_dice and val_jaccard are the
// means over slices, with the empty-truth rule of apps/evaluation.h.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/train_config.h"
#include "engine/tensor.h"
#include "models/unet.h"

namespace ich {
class ProcessGroup;
}

namespace ich::app {

// config.loss of probabilities p against targets t: dice, bce or dice+bce.
Tensor training_loss(const std::string& loss, const Tensor& p, const Tensor& t);

struct ValidationResult {
  double loss = 0.0, dice = 0.0, jaccard = 0.0;
  size_t slices = 0;
};

// Scores every slice of `source` in chunks of up to config.batch consecutive slices of one
// size, and writes the panels of the `display` slices (sorted indices of source) as
// samples_dir/epoch_NNN_<slice>.png. Data parallel (comm with N > 1 ranks): chunk c is scored
// by rank c mod N and the sums are all-reduced, so every rank returns the same result, equal
// (up to the order of the sums) to one process's; rank 0 also predicts the chunks holding
// the display slices and is the only one that writes their panels.
ValidationResult validate(Unet& net, const Device& device, const data::SliceSource& source,
                          const TrainConfig& config, const std::vector<size_t>& display,
                          const std::filesystem::path& samples_dir, int epoch, ProcessGroup* comm);

}  // namespace ich::app
