// Shared helpers of the DICOM tests: a small HU volume with values a CT holds (air, soft
// tissue, bone, and below -1024 so that the stored int16 goes negative), writing it as a
// series, and editing written files with GDCM to make unusual or damaged ones.
#pragma once

#include <gdcmDataElement.h>
#include <gdcmFileMetaInformation.h>
#include <gdcmReader.h>
#include <gdcmTrace.h>
#include <gdcmWriter.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "data/dicom.h"
#include "data/dicom_write.h"
#include "data/nifti.h"

namespace ich::test {

// nx x ny x nz, spacing (0.7, 0.55, 2.5) mm, integer HU from -3000 to 3000.
inline data::Volume hu_volume(int nx = 24, int ny = 20, int nz = 7) {
  data::Volume v;
  v.nx = nx;
  v.ny = ny;
  v.nz = nz;
  v.spacing[0] = 0.7;
  v.spacing[1] = 0.55;
  v.spacing[2] = 2.5;
  v.values.resize(size_t(v.voxels()));
  for (int k = 0; k < nz; ++k)
    for (int j = 0; j < ny; ++j)
      for (int i = 0; i < nx; ++i) {
        const int h = (i * 37 + j * 101 + k * 211) % 6001 - 3000;
        v.values[(size_t(k) * ny + j) * nx + i] = float(h);
      }
  v.values[0] = -1024;
  v.values[1] = -1025;   // stored -1
  v.values[2] = 31743;   // the largest HU int16 holds with the intercept
  v.values[3] = -33792;  // the smallest
  return v;
}

inline data::DicomWriteOptions write_options(uint64_t seed = 7) {
  data::DicomWriteOptions o;
  o.seed = seed;
  o.origin[0] = -10.5;
  o.origin[1] = 20.25;
  o.origin[2] = -33;
  return o;
}

inline data::DicomVolume read_folder(const std::string& dir, const data::DicomReadOptions& o = {}) {
  const data::DicomFolder f = data::scan_dicom_folder(dir);
  return data::read_dicom_series(data::select_dicom_series(f, ""), o);
}

// Reads a file with GDCM (only on files this test wrote), lets `edit` change its data set
// and meta information, and writes it back in place.
inline void edit_dicom(
    const std::string& path,
    const std::function<void(gdcm::DataSet&, gdcm::FileMetaInformation&)>& edit) {
  gdcm::Trace::SetWarning(false);
  gdcm::Reader r;
  r.SetFileName(path.c_str());
  REQUIRE(r.Read());
  gdcm::Writer w;
  w.SetFile(r.GetFile());
  w.CheckFileMetaInformationOff();  // keep the meta information as edited
  edit(w.GetFile().GetDataSet(), w.GetFile().GetHeader());
  w.SetFileName(path.c_str());
  REQUIRE(w.Write());
}

inline void set_text(gdcm::DataSet& d, uint16_t g, uint16_t e, gdcm::VR vr, std::string value) {
  if (value.size() % 2) value += vr == gdcm::VR::UI ? '\0' : ' ';
  gdcm::DataElement de(gdcm::Tag(g, e));
  de.SetVR(vr);
  de.SetByteValue(value.data(), uint32_t(value.size()));
  d.Replace(de);
}

inline void set_us(gdcm::DataSet& d, uint16_t g, uint16_t e, uint16_t value) {
  gdcm::DataElement de(gdcm::Tag(g, e));
  de.SetVR(gdcm::VR::US);
  de.SetByteValue(reinterpret_cast<const char*>(&value), 2);
  d.Replace(de);
}

inline void set_bytes(gdcm::DataSet& d, uint16_t g, uint16_t e, gdcm::VR vr,
                      const std::vector<uint8_t>& bytes) {
  gdcm::DataElement de(gdcm::Tag(g, e));
  de.SetVR(vr);
  de.SetByteValue(reinterpret_cast<const char*>(bytes.data()), uint32_t(bytes.size()));
  d.Replace(de);
}

inline std::string ds3(double a, double b, double c) {
  char s[96];
  std::snprintf(s, sizeof s, "%.10g\\%.10g\\%.10g", a, b, c);
  return s;
}

}  // namespace ich::test
