// safetensors, the format of huggingface/safetensors (readable by PyTorch's
// safetensors.torch.load_file and written by save_file):
//
//   u64 little-endian N | N bytes of JSON header | data
//   header: {"name": {"dtype": "F32", "shape": [64, 1, 3, 3], "data_offsets": [begin, end]},
//            ..., "__metadata__": {"key": "value", ...}}
//   offsets are relative to the start of the data; the tensors tile the data exactly
//   (no gap, no overlap, nothing after the last one); data is little-endian, row-major.
//
// save writes to a temporary name in the same folder and renames it over the final name,
// so a reader never sees a half-written file. load validates every field and throws
// ich::Error naming the file and the problem.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/nn.h"
#include "engine/tensor.h"

namespace ich {

// A tensor as stored in the file: dtype, shape (may be () or contain 0 in files written by
// others), raw little-endian bytes.
struct HostTensor {
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;

  int64_t numel() const;
  // The tensor on `device`; shape () becomes (1). Throws for zero-size shapes.
  Tensor to_tensor(const Device& device = Device::cpu()) const;
};

struct SafetensorsFile {
  std::map<std::string, HostTensor> tensors;
  std::map<std::string, std::string> metadata;

  // Every tensor on `device` (see HostTensor::to_tensor).
  std::map<std::string, Tensor> to_tensors(const Device& device = Device::cpu()) const;
};

// "F32", "U8", "I16", "I32", "I64".
const char* safetensors_dtype_name(DType dtype);

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});
SafetensorsFile load_safetensors(const std::string& path);

}  // namespace ich
