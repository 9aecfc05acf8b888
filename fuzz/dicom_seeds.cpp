// Writes the seed corpus of fuzz_dicom: a small series of the phantom's writer (16x16, two
// slices, explicit VR little endian), to be transcoded into the other transfer syntaxes by
// DCMTK's tools (docs/DATA.md, "Fuzzing").
#include <cstdio>

#include "core/error.h"
#include "data/dicom_write.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: dicom_seeds OUT_DIR\n");
    return 2;
  }
  ich::data::Volume v;
  v.nx = v.ny = 16;
  v.nz = 2;
  v.values.resize(size_t(v.voxels()));
  for (size_t n = 0; n < v.values.size(); ++n) v.values[n] = float(int(n * 53 % 4000) - 2000);
  try {
    ich::data::write_dicom_series(argv[1], v, ich::data::DicomWriteOptions{});
  } catch (const ich::Error& e) {
    std::fprintf(stderr, "dicom_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
