// libFuzzer target: any bytes given to the NIfTI reader must end in a volume or an
// ich::Error, never a crash, a sanitizer report, a leak, or an allocation beyond libFuzzer's
// -malloc_limit_mb (the "absurd dimensions" guard). nifti_clib reads files by name, so each
// input is written to a scratch file, named .nii.gz when it starts with the gzip magic.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "core/error.h"
#include "data/nifti.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string base = "/tmp/ichseg-fuzz-nifti-" + std::to_string(::getpid());
  const bool gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  const std::string path = base + (gz ? ".nii.gz" : ".nii");
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    const ich::data::Volume v = ich::data::read_nifti(path);
    if (v.values.size() != size_t(v.nx) * v.ny * v.nz) __builtin_trap();
  } catch (const ich::Error&) {
    // a clear refusal is the expected outcome for most inputs
  }
  std::remove(path.c_str());
  return 0;
}
