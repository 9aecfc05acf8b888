// NIfTI variants written by the test and read back: every datatype, NIfTI-1 and NIfTI-2,
// .nii and .nii.gz, scl_slope/scl_inter, a hand-built header in both byte orders, and the
// slice orientation.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "data/nifti.h"
#include "data_test_util.h"

using namespace ich::data;
using ich::test::TempDir;

namespace {

// Stored values for a datatype: a ramp that uses the sign where the type has one.
template <typename T>
std::vector<uint8_t> ramp_bytes(int64_t n, std::vector<double>* expected) {
  std::vector<T> v(static_cast<size_t>(n));
  const bool is_signed = std::numeric_limits<T>::is_signed;
  for (int64_t i = 0; i < n; ++i) {
    const double x = is_signed ? double(i % 101) - 50.0 : double(i % 101);
    v[i] = static_cast<T>(std::is_floating_point<T>::value ? x * 0.25 : x);
    expected->push_back(double(v[i]));
  }
  std::vector<uint8_t> bytes(v.size() * sizeof(T));
  std::memcpy(bytes.data(), v.data(), bytes.size());
  return bytes;
}

// Every datatype the reader supports, with the ramp of its C type.
struct DatatypeRamp {
  int datatype;
  std::vector<uint8_t> (*ramp)(int64_t n, std::vector<double>* expected);
};
constexpr DatatypeRamp kDatatypes[] = {
    {kNiftiUint8, ramp_bytes<uint8_t>}, {kNiftiInt8, ramp_bytes<int8_t>},
    {kNiftiInt16, ramp_bytes<int16_t>}, {kNiftiUint16, ramp_bytes<uint16_t>},
    {kNiftiInt32, ramp_bytes<int32_t>}, {kNiftiUint32, ramp_bytes<uint32_t>},
    {kNiftiInt64, ramp_bytes<int64_t>}, {kNiftiUint64, ramp_bytes<uint64_t>},
    {kNiftiFloat32, ramp_bytes<float>}, {kNiftiFloat64, ramp_bytes<double>},
};

template <typename T>
void put(std::vector<uint8_t>& b, size_t offset, T value, bool big_endian) {
  uint8_t raw[sizeof(T)];
  std::memcpy(raw, &value, sizeof(T));
  if (big_endian) std::reverse(raw, raw + sizeof(T));
  std::memcpy(b.data() + offset, raw, sizeof(T));
}

}  // namespace

TEST_CASE("nifti: every datatype, NIfTI-1 and -2, .nii and .nii.gz, round trips exactly",
          "[data]") {
  TempDir dir("nifti-types");
  const int64_t nx = 7, ny = 5, nz = 3;
  for (const auto& [datatype, ramp] : kDatatypes) {
    for (int version : {1, 2}) {
      for (bool gz : {false, true}) {
        const std::string path = dir / (std::string(nifti_datatype_name(datatype)) + "_v" +
                                        std::to_string(version) + (gz ? ".nii.gz" : ".nii"));
        INFO(path);
        std::vector<double> expected;
        const std::vector<uint8_t> stored = ramp(nx * ny * nz, &expected);
        NiftiWriteOptions o;
        o.version = version;
        o.spacing[0] = 0.5;
        o.spacing[1] = 0.75;
        o.spacing[2] = 5.0;
        write_nifti(path, nx, ny, nz, datatype, stored.data(), o);

        const NiftiHeader h = read_nifti_header(path);
        CHECK(h.version == version);
        CHECK(h.gzipped == gz);
        CHECK(h.datatype == datatype);
        const Volume v = read_nifti(path);
        REQUIRE(v.nx == nx);
        REQUIRE(v.ny == ny);
        REQUIRE(v.nz == nz);
        CHECK(v.spacing[0] == 0.5);
        CHECK(v.spacing[1] == 0.75);
        CHECK(v.spacing[2] == 5.0);
        REQUIRE(v.values.size() == expected.size());
        size_t mismatches = 0;
        for (size_t i = 0; i < expected.size(); ++i)
          mismatches += v.values[i] != float(expected[i]);
        CHECK(mismatches == 0);
      }
    }
  }
}

TEST_CASE("nifti: scl_slope and scl_inter are applied, slope 0 means no scaling", "[data]") {
  TempDir dir("nifti-scale");
  const int16_t stored[6] = {-3, 0, 1, 2, 1000, 32767};
  for (int version : {1, 2}) {
    NiftiWriteOptions o;
    o.version = version;
    o.scl_slope = 0.5;
    o.scl_inter = -1024.0;
    const std::string path = dir / ("scaled" + std::to_string(version) + ".nii.gz");
    write_nifti(path, 3, 2, 1, kNiftiInt16, stored, o);
    const Volume v = read_nifti(path);
    for (int i = 0; i < 6; ++i) CHECK(v.values[i] == float(stored[i] * 0.5 - 1024.0));

    o.scl_slope = 0.0;  // "no scaling" by the NIfTI convention, whatever the intercept
    o.scl_inter = 7.0;
    const std::string unscaled = dir / ("unscaled" + std::to_string(version) + ".nii");
    write_nifti(unscaled, 3, 2, 1, kNiftiInt16, stored, o);
    const Volume u = read_nifti(unscaled);
    for (int i = 0; i < 6; ++i) CHECK(u.values[i] == float(stored[i]));
  }
}

TEST_CASE("nifti: a header built byte by byte is read in both byte orders", "[data]") {
  TempDir dir("nifti-hand");
  for (bool big_endian : {false, true}) {
    // NIfTI-1: 348-byte header, 4-byte extension flag, then int16 voxels (4, 3, 2).
    std::vector<uint8_t> b(352 + 24 * 2, 0);
    put<int32_t>(b, 0, 348, big_endian);
    const int16_t dims[8] = {3, 4, 3, 2, 1, 1, 1, 1};
    for (int i = 0; i < 8; ++i) put<int16_t>(b, 40 + 2 * i, dims[i], big_endian);
    put<int16_t>(b, 70, 4, big_endian);   // datatype int16
    put<int16_t>(b, 72, 16, big_endian);  // bitpix
    const float pixdim[4] = {1.f, 0.8f, 0.9f, 4.5f};
    for (int i = 0; i < 4; ++i) put<float>(b, 76 + 4 * i, pixdim[i], big_endian);
    put<float>(b, 108, 352.f, big_endian);  // vox_offset
    put<float>(b, 112, 2.f, big_endian);    // scl_slope
    put<float>(b, 116, 10.f, big_endian);   // scl_inter
    std::memcpy(b.data() + 344, "n+1\0", 4);
    for (int i = 0; i < 24; ++i) put<int16_t>(b, 352 + 2 * i, int16_t(i - 12), big_endian);
    const std::string path = dir / (big_endian ? "be.nii" : "le.nii");
    ich::test::write_bytes(path, b);

    const NiftiHeader h = read_nifti_header(path);
    CHECK(h.byte_swapped == big_endian);
    const Volume v = read_nifti(path);
    REQUIRE(v.nx == 4);
    REQUIRE(v.ny == 3);
    REQUIRE(v.nz == 2);
    CHECK(v.spacing[0] == Approx(0.8));
    CHECK(v.spacing[2] == Approx(4.5));
    for (int i = 0; i < 24; ++i) CHECK(v.values[i] == float((i - 12) * 2 + 10));
  }
}

TEST_CASE("nifti: slice k is ny rows of nx columns, pixel (j, i) = voxel (i, j, k)", "[data]") {
  TempDir dir("nifti-orient");
  const int nx = 5, ny = 4, nz = 3;
  std::vector<int32_t> stored(nx * ny * nz);
  for (int k = 0; k < nz; ++k)
    for (int j = 0; j < ny; ++j)
      for (int i = 0; i < nx; ++i) stored[(k * ny + j) * nx + i] = 100 * k + 10 * j + i;
  write_nifti(dir / "o.nii", nx, ny, nz, kNiftiInt32, stored.data());
  const Volume v = read_nifti(dir / "o.nii");
  CHECK(v.at(3, 2, 1) == 123.f);
  CHECK(v.slice(2)[1 * nx + 4] == 214.f);  // row 1, column 4 of slice 2
}
