#include "models/checkpoint.h"

#include <cstdlib>

#include "engine/safetensors.h"

namespace ich {

namespace {

const std::string kOptimizerPrefix = "optimizer.";

uint64_t parse_u64(const std::map<std::string, std::string>& metadata, const std::string& key,
                   const std::string& path) {
  const auto it = metadata.find(key);
  ICH_CHECK(it != metadata.end(), path << ": metadata has no '" << key << "'");
  char* end = nullptr;
  const unsigned long long v = std::strtoull(it->second.c_str(), &end, 10);
  ICH_CHECK(!it->second.empty() && *end == '\0',
            path << ": metadata '" << key << "' = '" << it->second << "' is not an integer");
  return v;
}

}  // namespace

void save_checkpoint(const std::string& path, Unet& model, const Adam* optimizer,
                     const std::map<std::string, std::string>& extra_metadata) {
  NamedTensors tensors = model.state_dict();
  if (optimizer) {
    for (auto& [name, t] : optimizer->state()) tensors.emplace_back(kOptimizerPrefix + name, t);
  }
  std::map<std::string, std::string> metadata = extra_metadata;
  for (const auto& [k, v] : model.config().to_metadata()) metadata[k] = v;
  metadata["rng.dropout.seed"] = std::to_string(model.dropout_generator().seed);
  metadata["rng.dropout.offset"] = std::to_string(model.dropout_generator().offset);
  save_safetensors(path, tensors, metadata);
}

std::map<std::string, std::string> load_checkpoint(const std::string& path, Unet& model,
                                                   Adam* optimizer) {
  const SafetensorsFile file = load_safetensors(path);
  if (UnetConfig::in_metadata(file.metadata)) {
    const UnetConfig saved = UnetConfig::from_metadata(file.metadata);
    const std::string diff = model.config().architecture_differences(saved);
    ICH_CHECK(diff.empty(), path << " holds a different U-Net (model vs checkpoint: " << diff
                                 << "); build the model with the checkpoint's options");
  }
  std::map<std::string, Tensor> weights, optimizer_state;
  for (const auto& [name, t] : file.tensors) {
    if (name.compare(0, kOptimizerPrefix.size(), kOptimizerPrefix) == 0) {
      optimizer_state.emplace(name.substr(kOptimizerPrefix.size()), t.to_tensor(model.device()));
    } else {
      weights.emplace(name, t.to_tensor(model.device()));
    }
  }
  try {
    model.load_state_dict(weights);
  } catch (const Error& e) {
    ICH_FAIL(path << ": " << e.what());
  }
  if (optimizer && !optimizer_state.empty()) optimizer->load_state(optimizer_state);
  if (file.metadata.count("rng.dropout.seed")) {
    model.dropout_generator().seed = parse_u64(file.metadata, "rng.dropout.seed", path);
    model.dropout_generator().offset = parse_u64(file.metadata, "rng.dropout.offset", path);
  }
  return file.metadata;
}

}  // namespace ich
