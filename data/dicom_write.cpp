#include "data/dicom_write.h"

#include <gdcmDataElement.h>
#include <gdcmFileMetaInformation.h>
#include <gdcmTrace.h>
#include <gdcmTransferSyntax.h>
#include <gdcmWriter.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <sstream>

#include "core/error.h"
#include "data/fileutil.h"
#include "data/rng.h"

namespace fs = std::filesystem;

namespace ich::data {

namespace {

constexpr const char* kCtImageStorage = "1.2.840.10008.5.1.4.1.1.2";
constexpr double kIntercept = -1024;

// Streams of the seed for the UIDs and the names.
enum UidKind : uint64_t { kStudy = 1, kSeries, kFrameOfReference, kInstance, kNames };

std::string uid_from(uint64_t seed, uint64_t kind, uint64_t index) {
  const uint64_t hi = mix({seed, kind, index, 1});
  const uint64_t lo = mix({seed, kind, index, 2});
  unsigned __int128 v = (static_cast<unsigned __int128>(hi) << 64) | lo;
  if (v == 0) v = 1;
  std::string digits;
  while (v) {
    digits += static_cast<char>('0' + int(v % 10));
    v /= 10;
  }
  std::reverse(digits.begin(), digits.end());
  return "2.25." + digits;
}

// A decimal string (DS) of at most 16 characters, as precise as that allows.
std::string ds(double v) {
  char s[40];
  for (int precision = 17; precision >= 1; --precision) {
    std::snprintf(s, sizeof s, "%.*g", precision, v);
    if (std::strlen(s) <= 16) return s;
  }
  ICH_FAIL("cannot write " << v << " as a DICOM decimal string");
}

std::string ds_list(std::initializer_list<double> values) {
  std::string out;
  for (double v : values) out += (out.empty() ? "" : "\\") + ds(v);
  return out;
}

void put_text(gdcm::DataSet& d, uint16_t g, uint16_t e, gdcm::VR vr, std::string value) {
  if (value.size() % 2) value += vr == gdcm::VR::UI ? '\0' : ' ';
  gdcm::DataElement de(gdcm::Tag(g, e));
  de.SetVR(vr);
  de.SetByteValue(value.data(), static_cast<uint32_t>(value.size()));
  d.Replace(de);
}

void put_us(gdcm::DataSet& d, uint16_t g, uint16_t e, uint16_t value) {
  const uint8_t b[2] = {uint8_t(value & 0xFF), uint8_t(value >> 8)};  // little endian
  gdcm::DataElement de(gdcm::Tag(g, e));
  de.SetVR(gdcm::VR::US);
  de.SetByteValue(reinterpret_cast<const char*>(b), 2);
  d.Replace(de);
}

}  // namespace

void dicom_centred_origin(const Volume& volume, double origin[3]) {
  origin[0] = -0.5 * (volume.nx - 1) * volume.spacing[0];
  origin[1] = -0.5 * (volume.ny - 1) * volume.spacing[1];
  origin[2] = 0;
}

DicomWriteResult write_dicom_series(const std::string& dir, const Volume& volume,
                                    const DicomWriteOptions& o) {
  ICH_CHECK(volume.nx >= 1 && volume.ny >= 1 && volume.nz >= 1 && volume.nx <= 65535 &&
                volume.ny <= 65535 && int64_t(volume.values.size()) == volume.voxels(),
            "write_dicom_series: a volume of " << volume.nx << "x" << volume.ny << "x" << volume.nz
                                               << " with " << volume.values.size() << " values");
  for (int i = 0; i < 3; ++i)
    ICH_CHECK(volume.spacing[i] > 0 && std::isfinite(volume.spacing[i]),
              "write_dicom_series: spacing " << volume.spacing[i] << " mm");
  const int64_t plane = int64_t(volume.nx) * volume.ny;
  std::vector<int16_t> stored(static_cast<size_t>(volume.voxels()));
  for (int64_t n = 0; n < volume.voxels(); ++n) {
    const double s = double(volume.values[size_t(n)]) - kIntercept;
    ICH_CHECK(s == std::floor(s) && s >= -32768 && s <= 32767,
              "write_dicom_series: voxel (" << n % volume.nx << ", " << (n / volume.nx) % volume.ny
                                            << ", " << n / plane << ") is "
                                            << volume.values[size_t(n)]
                                            << " HU: not an integer in [-33792, 31743]");
    stored[size_t(n)] = static_cast<int16_t>(s);
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  ICH_CHECK(fs::is_directory(dir), "cannot create " << dir << ": " << ec.message());
  gdcm::Trace::SetWarning(false);
  gdcm::Trace::SetError(false);

  DicomWriteResult result;
  result.study_uid = uid_from(o.seed, kStudy, 0);
  result.series_uid = uid_from(o.seed, kSeries, 0);
  const std::string frame_uid = uid_from(o.seed, kFrameOfReference, 0);
  // Names: a seeded shuffle of 1..nz, so that name order says nothing about position.
  std::vector<int> names(static_cast<size_t>(volume.nz));
  std::iota(names.begin(), names.end(), 1);
  Rng rng(mix({o.seed, kNames}));
  for (size_t i = names.size(); i > 1; --i) std::swap(names[i - 1], names[rng.below(i)]);
  result.files.resize(size_t(volume.nz));

  // Descending z: the top slice is written first and is instance 1.
  for (int k = volume.nz - 1; k >= 0; --k) {
    gdcm::Writer writer;
    gdcm::DataSet& d = writer.GetFile().GetDataSet();
    const std::string instance = uid_from(o.seed, kInstance, uint64_t(k));
    const double z = o.origin[2] + k * volume.spacing[2];
    put_text(d, 0x0008, 0x0008, gdcm::VR::CS, "ORIGINAL\\PRIMARY\\AXIAL");
    put_text(d, 0x0008, 0x0016, gdcm::VR::UI, kCtImageStorage);
    put_text(d, 0x0008, 0x0018, gdcm::VR::UI, instance);
    put_text(d, 0x0008, 0x0060, gdcm::VR::CS, "CT");
    put_text(d, 0x0008, 0x0070, gdcm::VR::LO, "ichseg synthetic phantom");
    put_text(d, 0x0008, 0x103E, gdcm::VR::LO, o.series_description);
    put_text(d, 0x0010, 0x0010, gdcm::VR::PN, o.patient_name);
    put_text(d, 0x0010, 0x0020, gdcm::VR::LO, o.patient_id);
    put_text(d, 0x0018, 0x0050, gdcm::VR::DS, ds(volume.spacing[2]));
    put_text(d, 0x0018, 0x5100, gdcm::VR::CS, "HFS");
    put_text(d, 0x0020, 0x000D, gdcm::VR::UI, result.study_uid);
    put_text(d, 0x0020, 0x000E, gdcm::VR::UI, result.series_uid);
    put_text(d, 0x0020, 0x0011, gdcm::VR::IS, std::to_string(o.series_number));
    put_text(d, 0x0020, 0x0013, gdcm::VR::IS, std::to_string(volume.nz - k));
    put_text(d, 0x0020, 0x0032, gdcm::VR::DS, ds_list({o.origin[0], o.origin[1], z}));
    put_text(d, 0x0020, 0x0037, gdcm::VR::DS, "1\\0\\0\\0\\1\\0");
    put_text(d, 0x0020, 0x0052, gdcm::VR::UI, frame_uid);
    put_text(d, 0x0020, 0x1041, gdcm::VR::DS, ds(z));
    put_us(d, 0x0028, 0x0002, 1);
    put_text(d, 0x0028, 0x0004, gdcm::VR::CS, "MONOCHROME2");
    put_us(d, 0x0028, 0x0010, static_cast<uint16_t>(volume.ny));
    put_us(d, 0x0028, 0x0011, static_cast<uint16_t>(volume.nx));
    put_text(d, 0x0028, 0x0030, gdcm::VR::DS, ds_list({volume.spacing[1], volume.spacing[0]}));
    put_us(d, 0x0028, 0x0100, 16);
    put_us(d, 0x0028, 0x0101, 16);
    put_us(d, 0x0028, 0x0102, 15);
    put_us(d, 0x0028, 0x0103, 1);
    put_text(d, 0x0028, 0x1050, gdcm::VR::DS, "40");
    put_text(d, 0x0028, 0x1051, gdcm::VR::DS, "120");
    put_text(d, 0x0028, 0x1052, gdcm::VR::DS, ds(kIntercept));
    put_text(d, 0x0028, 0x1053, gdcm::VR::DS, "1");
    put_text(d, 0x0028, 0x1054, gdcm::VR::LO, "HU");
    {
      // int16 little endian, (rows, columns) = the volume's slice k as it is stored.
      std::vector<uint8_t> bytes(size_t(plane) * 2);
      const int16_t* src = stored.data() + k * plane;
      for (int64_t n = 0; n < plane; ++n) {
        const uint16_t u = static_cast<uint16_t>(src[n]);
        bytes[size_t(2 * n)] = uint8_t(u & 0xFF);
        bytes[size_t(2 * n + 1)] = uint8_t(u >> 8);
      }
      gdcm::DataElement pixels(gdcm::Tag(0x7FE0, 0x0010));
      pixels.SetVR(gdcm::VR::OW);
      pixels.SetByteValue(reinterpret_cast<const char*>(bytes.data()),
                          static_cast<uint32_t>(bytes.size()));
      d.Replace(pixels);
    }
    writer.GetFile().GetHeader().SetDataSetTransferSyntax(
        gdcm::TransferSyntax::ExplicitVRLittleEndian);
    std::ostringstream os;
    writer.SetStream(os);
    ICH_CHECK(writer.Write(), "cannot encode slice " << k << " of " << dir << " as DICOM");
    char name[16];
    std::snprintf(name, sizeof name, "%05d", names[size_t(k)]);
    const std::string path = (fs::path(dir) / name).string();
    write_file_atomic(path, os.str());
    result.files[size_t(k)] = path;
  }
  return result;
}

}  // namespace ich::data
