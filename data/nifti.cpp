#include "data/nifti.h"

#include <nifti2_io.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "data/fileutil.h"
#include "data/nonfinite.h"
#include "data/text.h"

namespace ich::data {

namespace {

constexpr int kNifti1HeaderBytes = 348;
constexpr int kNifti2HeaderBytes = 540;
static_assert(sizeof(nifti_1_header) == kNifti1HeaderBytes &&
              sizeof(nifti_2_header) == kNifti2HeaderBytes);
// deflate cannot expand data by more than about 1032:1, so a .nii.gz of S bytes holds at most
// this many bytes; a header that announces more is lying, and is refused before any allocation.
constexpr int64_t kMaxDeflateRatio = 1032;

void silence_nifti_clib() {
  static std::once_flag once;
  std::call_once(once, [] { nifti_set_debug_level(0); });
}

// Little helpers over the raw header bytes, honouring the file's byte order.
struct RawHeader {
  uint8_t bytes[kNifti2HeaderBytes] = {};
  bool swapped = false;

  template <typename T>
  T get(int offset) const {
    uint8_t b[sizeof(T)];
    std::memcpy(b, bytes + offset, sizeof(T));
    if (swapped) {
      for (size_t i = 0; i < sizeof(T) / 2; ++i) std::swap(b[i], b[sizeof(T) - 1 - i]);
    }
    T v;
    std::memcpy(&v, b, sizeof(T));
    return v;
  }
};

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// Reads the first bytes of the file (through zlib, which passes plain files through).
// Returns how many bytes were read; gzip errors are reported with the file's name.
int read_header_bytes(const std::string& path, uint8_t* out, int want, bool* gzipped) {
  FILE* probe = std::fopen(path.c_str(), "rb");
  ICH_CHECK(probe != nullptr, "cannot read " << path << ": " << std::strerror(errno));
  uint8_t magic[2] = {0, 0};
  const size_t got_magic = std::fread(magic, 1, 2, probe);
  std::fclose(probe);
  *gzipped = got_magic == 2 && magic[0] == 0x1f && magic[1] == 0x8b;

  gzFile gz = gzopen(path.c_str(), "rb");
  ICH_CHECK(gz != nullptr, "cannot read " << path << ": " << std::strerror(errno));
  int total = 0;
  while (total < want) {
    const int got = gzread(gz, out + total, static_cast<unsigned>(want - total));
    if (got < 0) {
      int code = 0;
      const std::string why = gzerror(gz, &code);
      gzclose(gz);
      ICH_FAIL(path << ": the gzip stream is damaged or ends early (" << why << ")");
    }
    if (got == 0) break;
    total += got;
  }
  int code = 0;
  const char* why = gzerror(gz, &code);
  const bool truncated_gzip = *gzipped && total < want && code != Z_OK && code != Z_STREAM_END;
  const std::string message = why ? why : "";
  gzclose(gz);
  ICH_CHECK(!truncated_gzip, path << ": the gzip stream ends early (" << message << ")");
  return total;
}

// The one place raw voxels become float: stored * slope + inter, in double when there is
// any scaling (no scaling: the plain conversion).
template <typename T>
void convert_to_float(const void* raw, int64_t n, double slope, double inter, float* out) {
  const T* in = static_cast<const T*>(raw);
  if (slope == 1.0 && inter == 0.0) {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(in[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(double(in[i]) * slope + inter);
  }
}

// Every datatype this reader supports: its code, name, size and conversion, in the order the
// "not supported" message lists them.
struct DatatypeInfo {
  int code;
  const char* name;
  int bytes;
  void (*to_float)(const void* raw, int64_t n, double slope, double inter, float* out);
};

constexpr DatatypeInfo kDatatypes[] = {
    {kNiftiUint8, "uint8", 1, convert_to_float<uint8_t>},
    {kNiftiInt8, "int8", 1, convert_to_float<int8_t>},
    {kNiftiInt16, "int16", 2, convert_to_float<int16_t>},
    {kNiftiUint16, "uint16", 2, convert_to_float<uint16_t>},
    {kNiftiInt32, "int32", 4, convert_to_float<int32_t>},
    {kNiftiUint32, "uint32", 4, convert_to_float<uint32_t>},
    {kNiftiInt64, "int64", 8, convert_to_float<int64_t>},
    {kNiftiUint64, "uint64", 8, convert_to_float<uint64_t>},
    {kNiftiFloat32, "float32", 4, convert_to_float<float>},
    {kNiftiFloat64, "float64", 8, convert_to_float<double>},
};

// nullptr for a code this reader does not support.
const DatatypeInfo* find_datatype(int code) {
  for (const DatatypeInfo& d : kDatatypes) {
    if (d.code == code) return &d;
  }
  return nullptr;
}

// "uint8, int8, ..., float64"
std::string supported_datatypes() {
  std::string names;
  for (const DatatypeInfo& d : kDatatypes) names += std::string(names.empty() ? "" : ", ") + d.name;
  return names;
}

// A file of a NIfTI-1 or NIfTI-2 header (`Header`, made by nifti_clib for the dimensions and
// datatype; 348 or 540 bytes), the 4-byte extension flag (no extensions) and data_bytes zeros
// for the voxels.
// The header gets the options' spacing, scaling and description, millimetre units, and an
// sform that maps voxel indices to millimetres (a plain scaling, no rotation). NIfTI-1 stores
// these fields as float, NIfTI-2 as double.
template <typename Header>
std::vector<uint8_t> file_with_header(Header* hdr, const NiftiWriteOptions& options,
                                      const char* magic, size_t magic_bytes, int64_t data_bytes) {
  using Field = std::remove_reference_t<decltype(hdr->pixdim[0])>;
  for (int i = 0; i < 3; ++i) hdr->pixdim[i + 1] = static_cast<Field>(options.spacing[i]);
  hdr->scl_slope = static_cast<Field>(options.scl_slope);
  hdr->scl_inter = static_cast<Field>(options.scl_inter);
  hdr->xyzt_units = NIFTI_UNITS_MM;
  hdr->qform_code = 0;
  hdr->sform_code = NIFTI_XFORM_SCANNER_ANAT;
  const Affine a = options.has_affine ? options.affine : scaling_affine(options.spacing);
  Field* rows[3] = {hdr->srow_x, hdr->srow_y, hdr->srow_z};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) rows[r][c] = static_cast<Field>(a.m[r][c]);
  if (options.has_affine) {
    const std::array<double, 3> lengths = affine_spacing(a);
    for (int i = 0; i < 3; ++i) hdr->pixdim[i + 1] = static_cast<Field>(lengths[i]);
    if (affine_is_orthogonal(a)) {
      // The qform: the rotation and offset of the same affine (nifti_clib factors it).
      nifti_dmat44 m;
      for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 4; ++c) m.m[r][c] = a.m[r][c];
      double qb, qc, qd, qx, qy, qz, dx, dy, dz, qfac;
      nifti_dmat44_to_quatern(m, &qb, &qc, &qd, &qx, &qy, &qz, &dx, &dy, &dz, &qfac);
      hdr->quatern_b = static_cast<Field>(qb);
      hdr->quatern_c = static_cast<Field>(qc);
      hdr->quatern_d = static_cast<Field>(qd);
      hdr->qoffset_x = static_cast<Field>(qx);
      hdr->qoffset_y = static_cast<Field>(qy);
      hdr->qoffset_z = static_cast<Field>(qz);
      hdr->pixdim[0] = static_cast<Field>(qfac);
      hdr->qform_code = NIFTI_XFORM_SCANNER_ANAT;
    }
  }
  const std::string description = options.description.substr(0, 79);
  std::snprintf(hdr->descrip, sizeof hdr->descrip, "%s", description.c_str());
  std::memcpy(hdr->magic, magic, magic_bytes);
  const int vox_offset = int(sizeof(Header)) + 4;
  hdr->vox_offset = static_cast<decltype(hdr->vox_offset)>(vox_offset);
  std::vector<uint8_t> file(size_t(vox_offset + data_bytes), 0);
  std::memcpy(file.data(), hdr, sizeof(Header));
  return file;
}

// The voxel bytes of a float file read past nifti_clib, whose loader replaces NaN and Inf
// by 0 (and says so only at a debug level): they must reach the caller to be counted. The
// header has been validated (offset, size); zlib passes an uncompressed file through. The
// bytes come back in the machine's order.
std::vector<uint8_t> read_float_voxels(const NiftiHeader& h) {
  gzFile gz = gzopen(h.path.c_str(), "rb");
  ICH_CHECK(gz != nullptr, "cannot read " << h.path << ": " << std::strerror(errno));
  std::vector<uint8_t> bytes(static_cast<size_t>(h.data_bytes));
  bool ok = gzseek(gz, static_cast<z_off_t>(h.vox_offset), SEEK_SET) == h.vox_offset;
  int64_t total = 0;
  while (ok && total < h.data_bytes) {
    const int64_t chunk = std::min<int64_t>(h.data_bytes - total, int64_t(1) << 30);
    const int got = gzread(gz, bytes.data() + total, static_cast<unsigned>(chunk));
    if (got <= 0) break;
    total += got;
  }
  gzclose(gz);
  ICH_CHECK(ok && total == h.data_bytes,
            h.path << " is truncated: the voxel data ends early"
                   << (h.gzipped ? " (or the gzip stream is damaged)" : ""));
  if (h.byte_swapped) {
    const size_t width = static_cast<size_t>(nifti_datatype_bytes(h.datatype));
    for (size_t at = 0; at + width <= bytes.size(); at += width)
      std::reverse(bytes.begin() + long(at), bytes.begin() + long(at + width));
  }
  return bytes;
}

struct NiftiImageDeleter {
  void operator()(nifti_image* nim) const { nifti_image_free(nim); }
};
using NiftiImagePtr = std::unique_ptr<nifti_image, NiftiImageDeleter>;

struct MallocDeleter {
  void operator()(void* p) const { std::free(p); }
};

}  // namespace

const char* nifti_datatype_name(int datatype) {
  const DatatypeInfo* d = find_datatype(datatype);
  return d ? d->name : "";
}

int nifti_datatype_bytes(int datatype) {
  const DatatypeInfo* d = find_datatype(datatype);
  return d ? d->bytes : 0;
}

NiftiHeader read_nifti_header(const std::string& path) {
  NiftiHeader h;
  h.path = path;
  RawHeader raw;
  const int got = read_header_bytes(path, raw.bytes, kNifti2HeaderBytes, &h.gzipped);
  ICH_CHECK(got >= 4, path << " is truncated: " << got << " bytes, too short for a NIfTI header");

  // nifti_clib decides by the name whether to decompress; a name that disagrees with the
  // content would make it read different bytes than were checked here.
  ICH_CHECK(!h.gzipped || ends_with(path, ".gz"),
            path << " is gzip-compressed but its name does not end in .gz (rename it to .nii.gz)");
  int32_t sizeof_hdr = raw.get<int32_t>(0);
  if (sizeof_hdr != kNifti1HeaderBytes && sizeof_hdr != kNifti2HeaderBytes) {
    raw.swapped = true;
    sizeof_hdr = raw.get<int32_t>(0);
  }
  ICH_CHECK(sizeof_hdr == kNifti1HeaderBytes || sizeof_hdr == kNifti2HeaderBytes,
            path << " is not a NIfTI file: its header size field is neither 348 (NIfTI-1) nor "
                    "540 (NIfTI-2)");
  h.byte_swapped = raw.swapped;
  h.version = sizeof_hdr == kNifti1HeaderBytes ? 1 : 2;
  ICH_CHECK(got >= sizeof_hdr, path << " is truncated: the NIfTI-" << h.version << " header needs "
                                    << sizeof_hdr << " bytes, the file has " << got);

  int64_t dim[8] = {0};
  double pixdim[4] = {1, 1, 1, 1};
  double vox_offset = 0;
  double slope = 0, inter = 0;
  if (h.version == 1) {
    const uint8_t* magic = raw.bytes + 344;
    ICH_CHECK(std::memcmp(magic, "n+1\0", 4) == 0,
              path << " has a wrong magic '" << printable_bytes(magic, 4)
                   << "': not a single-file NIfTI-1 (.nii) image (expected 'n+1')");
    for (int i = 0; i < 8; ++i) dim[i] = raw.get<int16_t>(40 + 2 * i);
    h.datatype = raw.get<int16_t>(70);
    for (int i = 0; i < 4; ++i) pixdim[i] = raw.get<float>(76 + 4 * i);
    vox_offset = raw.get<float>(108);
    slope = raw.get<float>(112);
    inter = raw.get<float>(116);
  } else {
    const uint8_t* magic = raw.bytes + 4;
    ICH_CHECK(std::memcmp(magic, "n+2\0\r\n\032\n", 8) == 0,
              path << " has a wrong magic '" << printable_bytes(magic, 8)
                   << "': not a single-file NIfTI-2 image (expected 'n+2')");
    h.datatype = raw.get<int16_t>(12);
    for (int i = 0; i < 8; ++i) dim[i] = raw.get<int64_t>(16 + 8 * i);
    for (int i = 0; i < 4; ++i) pixdim[i] = raw.get<double>(104 + 8 * i);
    vox_offset = static_cast<double>(raw.get<int64_t>(168));
    slope = raw.get<double>(176);
    inter = raw.get<double>(184);
  }

  const int bytes_per_voxel = nifti_datatype_bytes(h.datatype);
  ICH_CHECK(bytes_per_voxel > 0, path << " has datatype code " << h.datatype
                                      << ", which is not supported (" << supported_datatypes()
                                      << ")");
  ICH_CHECK(dim[0] >= 1 && dim[0] <= 7,
            path << " has an invalid header: dim[0] (the number of dimensions) is " << dim[0]);
  int64_t voxels = 1;
  for (int i = 1; i <= dim[0]; ++i) {
    ICH_CHECK(dim[i] >= 1 && dim[i] <= kMaxVolumeVoxels,
              path << " has an absurd dimension " << i << " of " << dim[i] << " voxels");
    voxels *= dim[i];  // cannot overflow: each factor and the running product stay <= 2^30
    ICH_CHECK(voxels <= kMaxVolumeVoxels, path << " announces more than " << kMaxVolumeVoxels
                                               << " voxels; refusing such a volume");
  }
  for (int i = 4; i <= dim[0]; ++i) {
    ICH_CHECK(dim[i] == 1, path << " is a " << dim[0] << "-D image (dim[" << i << "] = " << dim[i]
                                << "); only 2-D and 3-D volumes are supported");
  }
  h.nx = dim[1];
  h.ny = dim[0] >= 2 ? dim[2] : 1;
  h.nz = dim[0] >= 3 ? dim[3] : 1;
  for (int i = 0; i < 3; ++i) {
    const double d = std::fabs(pixdim[i + 1]);
    h.spacing[i] = (std::isfinite(d) && d > 0) ? d : 1.0;
  }
  if (std::isfinite(slope) && slope != 0.0) {
    h.scl_slope = slope;
    h.scl_inter = std::isfinite(inter) ? inter : 0.0;
  }
  ICH_CHECK(std::isfinite(vox_offset) && vox_offset >= sizeof_hdr && vox_offset < 1e12,
            path << " has an invalid voxel offset " << vox_offset << " (must be at least "
                 << sizeof_hdr << ")");
  h.vox_offset = static_cast<int64_t>(vox_offset);
  h.data_bytes = voxels * bytes_per_voxel;

  const int64_t size_on_disk = file_size(path);
  if (h.gzipped) {
    ICH_CHECK(h.vox_offset + h.data_bytes <= size_on_disk * kMaxDeflateRatio + 65536,
              path << " announces " << h.nx << "x" << h.ny << "x" << h.nz << " voxels ("
                   << h.data_bytes << " bytes), more than a " << size_on_disk
                   << "-byte gzip file can hold");
  } else {
    ICH_CHECK(size_on_disk >= h.vox_offset + h.data_bytes,
              path << " is truncated: its header announces " << h.nx << "x" << h.ny << "x" << h.nz
                   << " " << nifti_datatype_name(h.datatype) << " voxels from byte " << h.vox_offset
                   << " (" << h.vox_offset + h.data_bytes << " bytes), the file has "
                   << size_on_disk);
  }
  return h;
}

Volume read_nifti(const std::string& path) {
  const NiftiHeader h = read_nifti_header(path);
  silence_nifti_clib();
  NiftiImagePtr nim(nifti_image_read(path.c_str(), 0));
  ICH_CHECK(nim != nullptr, path << ": nifti_clib could not read the header");
  ICH_CHECK(nim->nx == h.nx && nim->ny == h.ny && nim->nz == h.nz && nim->datatype == h.datatype &&
                nim->nvox == h.nx * h.ny * h.nz,
            path << ": nifti_clib reads the header differently (" << nim->nx << "x" << nim->ny
                 << "x" << nim->nz << " datatype " << nim->datatype << ")");
  const bool is_float = h.datatype == kNiftiFloat32 || h.datatype == kNiftiFloat64;
  std::vector<uint8_t> float_bytes;
  if (is_float) {
    float_bytes = read_float_voxels(h);
  } else {
    ICH_CHECK(nifti_image_load(nim.get()) == 0 && nim->data != nullptr,
              path << " is truncated: the voxel data ends early"
                   << (h.gzipped ? " (or the gzip stream is damaged)" : ""));
  }

  Volume v;
  v.nx = static_cast<int>(h.nx);
  v.ny = static_cast<int>(h.ny);
  v.nz = static_cast<int>(h.nz);
  for (int i = 0; i < 3; ++i) v.spacing[i] = h.spacing[i];
  v.datatype = h.datatype;
  v.values.resize(static_cast<size_t>(v.voxels()));
  const DatatypeInfo* type = find_datatype(h.datatype);
  ICH_CHECK(type != nullptr, path << ": datatype " << h.datatype << " is not supported");
  type->to_float(is_float ? float_bytes.data() : nim->data, v.voxels(), h.scl_slope, h.scl_inter,
                 v.values.data());
  // After scaling: a scaling can also overflow a finite value to Inf.
  v.nonfinite = count_nonfinite(v.values.data(), v.voxels());
  return v;
}

void write_nifti(const std::string& path, int64_t nx, int64_t ny, int64_t nz, int datatype,
                 const void* stored, const NiftiWriteOptions& options) {
  const int bytes_per_voxel = nifti_datatype_bytes(datatype);
  ICH_CHECK(bytes_per_voxel > 0,
            "cannot write " << path << ": datatype " << datatype << " is not supported");
  ICH_CHECK(nx >= 1 && ny >= 1 && nz >= 1 && nx * ny * nz <= kMaxVolumeVoxels,
            "cannot write " << path << ": invalid size " << nx << "x" << ny << "x" << nz);
  ICH_CHECK(options.version == 1 || options.version == 2,
            "cannot write " << path << ": NIfTI version " << options.version << " (1 or 2)");
  ICH_CHECK(options.version == 2 || (nx <= 32767 && ny <= 32767 && nz <= 32767),
            "cannot write " << path << ": NIfTI-1 dimensions are at most 32767; use version 2");
  silence_nifti_clib();

  const int64_t dims[8] = {3, nx, ny, nz, 1, 1, 1, 1};
  const int64_t data_bytes = nx * ny * nz * bytes_per_voxel;
  std::vector<uint8_t> file;
  if (options.version == 1) {
    std::unique_ptr<nifti_1_header, MallocDeleter> hdr(nifti_make_new_n1_header(dims, datatype));
    ICH_CHECK(hdr != nullptr, "cannot write " << path << ": nifti_clib refused the header");
    file = file_with_header(hdr.get(), options, "n+1\0", 4, data_bytes);
  } else {
    std::unique_ptr<nifti_2_header, MallocDeleter> hdr(nifti_make_new_n2_header(dims, datatype));
    ICH_CHECK(hdr != nullptr, "cannot write " << path << ": nifti_clib refused the header");
    file = file_with_header(hdr.get(), options, "n+2\0\r\n\032\n", 8, data_bytes);
  }
  std::memcpy(file.data() + file.size() - data_bytes, stored, static_cast<size_t>(data_bytes));

  if (!ends_with(path, ".gz")) {
    write_file_atomic(path, file.data(), file.size());
    return;
  }
  // gzip container (windowBits 15 + 16), level 6 as gzip's default.
  z_stream zs{};
  ICH_CHECK(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK,
            "cannot write " << path << ": zlib initialisation failed");
  std::vector<uint8_t> packed(deflateBound(&zs, file.size()));
  zs.next_in = file.data();
  zs.avail_in = static_cast<uInt>(file.size());
  zs.next_out = packed.data();
  zs.avail_out = static_cast<uInt>(packed.size());
  const int rc = deflate(&zs, Z_FINISH);
  const size_t packed_size = zs.total_out;
  deflateEnd(&zs);
  ICH_CHECK(rc == Z_STREAM_END,
            "cannot write " << path << ": gzip compression failed (" << rc << ")");
  write_file_atomic(path, packed.data(), packed_size);
}

void write_nifti_like(const std::string& path, const std::string& reference, int datatype,
                      const void* stored) {
  const NiftiHeader ref = read_nifti_header(reference);  // validated before nifti_clib reads it
  const int bytes_per_voxel = nifti_datatype_bytes(datatype);
  ICH_CHECK(bytes_per_voxel > 0,
            "cannot write " << path << ": datatype " << datatype << " is not supported");
  silence_nifti_clib();
  NiftiImagePtr nim(nifti_image_read(reference.c_str(), 0));
  ICH_CHECK(nim != nullptr,
            "cannot write " << path << ": nifti_clib cannot read the header of " << reference);
  ICH_CHECK(int64_t(nim->nvox) == ref.nx * ref.ny * ref.nz,
            "cannot write " << path << ": " << reference << " is not a 3-D volume");
  nim->datatype = datatype;
  nim->nbyper = bytes_per_voxel;
  nim->scl_slope = 0.0;
  nim->scl_inter = 0.0;
  nim->cal_min = 0.0;
  nim->cal_max = 0.0;
  nim->nifti_type = ref.version == 2 ? NIFTI_FTYPE_NIFTI2_1 : NIFTI_FTYPE_NIFTI1_1;
  const std::string tmp = temporary_name_for(path);
  ICH_CHECK(nifti_set_filenames(nim.get(), tmp.c_str(), 0, 1) == 0,
            "cannot write " << path << ": nifti_clib refused the file name");
  nim->data = const_cast<void*>(stored);
  nifti_image_write(nim.get());
  nim->data = nullptr;  // not ours to free
  const int64_t size = file_size(tmp);
  if (size <= 0 || (!ref.gzipped && !ends_with(path, ".gz") &&
                    size < ref.nx * ref.ny * ref.nz * bytes_per_voxel)) {
    std::remove(tmp.c_str());
    ICH_FAIL("cannot write " << path << ": nifti_clib wrote no complete file (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    ICH_FAIL("cannot write " << path << ": rename failed: " << std::strerror(e));
  }
}

}  // namespace ich::data
