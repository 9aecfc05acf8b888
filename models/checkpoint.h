// Checkpoints of a U-Net in safetensors: the model's state_dict under its PyTorch names
// (so torch's load_state_dict reads the weights after dropping the "optimizer." entries),
// the Adam state under "optimizer.<param>.exp_avg|exp_avg_sq|step", and metadata: the
// model config (UnetConfig::to_metadata), the dropout generator ("rng.dropout.seed",
// "rng.dropout.offset", decimal), and whatever the caller adds (epoch, best Dice, ...).
#pragma once

#include <map>
#include <string>

#include "engine/optim.h"
#include "models/unet.h"

namespace ich {

// optimizer may be null (weights only). Written atomically (temporary name + rename).
void save_checkpoint(const std::string& path, Unet& model, const Adam* optimizer,
                     const std::map<std::string, std::string>& extra_metadata = {});

// Loads into `model` (and `optimizer` when non-null and the file has optimizer state),
// restores the dropout generator, and returns the file's metadata. A file written for
// another architecture is refused before anything is loaded, naming what differs. Files
// without ichseg metadata (e.g. saved by PyTorch) are matched by names and shapes only.
std::map<std::string, std::string> load_checkpoint(const std::string& path, Unet& model,
                                                   Adam* optimizer = nullptr);

}  // namespace ich
