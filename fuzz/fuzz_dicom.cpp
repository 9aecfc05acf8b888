// libFuzzer target: any bytes given to the DICOM reader of one file (our structure walk,
// the header checks, then our native pixel loops or GDCM's codecs) must end in a slice of
// the announced size or an ich::Error: never a crash, an abort inside GDCM, a sanitizer
// report, a leak, or an allocation beyond -malloc_limit_mb. The bytes are read from memory,
// as the series reader reads each file.
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "data/dicom_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const ich::data::DicomSlice s =
        ich::data::read_dicom_slice("fuzz.dcm", std::vector<uint8_t>(data, data + size));
    if (s.hu.size() != size_t(s.header.rows) * s.header.columns) __builtin_trap();
  } catch (const ich::Error&) {
    // a clear refusal is the expected outcome for most inputs
  }
  return 0;
}
