// read_dicom_series (data/dicom.h): the slices of a series decoded into one HU volume.
#include <algorithm>

#include "core/error.h"
#include "data/dicom.h"
#include "data/fileutil.h"
#include "data/nonfinite.h"

namespace ich::data {

namespace {

// The NIfTI code of the stored pixels (Volume::datatype says what the file held).
int stored_datatype(const DicomSliceHeader& h) {
  if (h.pixels == DicomPixelKind::kFloat32) return kNiftiFloat32;
  if (h.pixels == DicomPixelKind::kFloat64) return kNiftiFloat64;
  const bool s = h.pixel_representation == 1;
  if (h.bits_allocated == 8) return s ? kNiftiInt8 : kNiftiUint8;
  if (h.bits_allocated == 16) return s ? kNiftiInt16 : kNiftiUint16;
  return s ? kNiftiInt32 : kNiftiUint32;
}

}  // namespace

DicomVolume read_dicom_series(const DicomSeries& series, const DicomReadOptions& options) {
  DicomVolume out;
  out.stack = dicom_stack(series, options);
  const DicomStack& st = out.stack;
  ICH_CHECK(int64_t(st.nx) * st.ny * st.nz <= kMaxVolumeVoxels,
            "series " << series.uid << " is " << st.nx << "x" << st.ny << "x" << st.nz
                      << " voxels, more than the " << kMaxVolumeVoxels << " a volume may hold");
  Volume& v = out.volume;
  v.nx = st.nx;
  v.ny = st.ny;
  v.nz = st.nz;
  for (int i = 0; i < 3; ++i) v.spacing[i] = st.spacing[i];
  v.datatype = stored_datatype(series.slices[size_t(st.order[0])]);
  v.values.resize(size_t(v.voxels()));
  const int64_t plane = int64_t(v.nx) * v.ny;
  for (int k = 0; k < st.nz; ++k) {
    const DicomSliceHeader& scanned = series.slices[size_t(st.order[size_t(k)])];
    const DicomParsed parsed(scanned.path, read_file_bytes(scanned.path));
    const DicomSliceHeader h = dicom_slice_header(parsed);
    ICH_CHECK(h.sop_instance == scanned.sop_instance && h.rows == scanned.rows &&
                  h.columns == scanned.columns && h.problem.empty() &&
                  std::equal(h.position, h.position + 3, scanned.position),
              scanned.path << " changed since its folder was scanned");
    decode_dicom_slice(parsed, h, v.values.data() + k * plane);
    out.files.push_back(scanned.path);
  }
  out.nonfinite = count_nonfinite(v.values.data(), v.voxels());
  return out;
}

}  // namespace ich::data
