#include "data/fileutil.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "core/error.h"

namespace fs = std::filesystem;

namespace ich::data {

namespace {

std::atomic<uint64_t> g_temp_counter{0};

// "name.nii.gz" -> (".nii.gz"), "name.png" -> (".png"), "name" -> ("")
std::string extension_of(const std::string& filename) {
  static const char* const kDouble[] = {".nii.gz", ".tar.gz"};
  for (const char* ext : kDouble) {
    const size_t n = std::strlen(ext);
    if (filename.size() > n && filename.compare(filename.size() - n, n, ext) == 0) return ext;
  }
  const size_t dot = filename.rfind('.');
  if (dot == std::string::npos || dot == 0) return "";
  return filename.substr(dot);
}

}  // namespace

std::string temporary_name_for(const std::string& path) {
  const fs::path p(path);
  const std::string name = p.filename().string();
  const std::string ext = extension_of(name);
  const std::string stem = name.substr(0, name.size() - ext.size());
  const std::string tmp = "." + stem + ".tmp-" + std::to_string(::getpid()) + "-" +
                          std::to_string(g_temp_counter.fetch_add(1)) + ext;
  return (p.parent_path() / tmp).string();
}

void write_file_atomic(const std::string& path, const void* bytes, size_t size) {
  const std::string tmp = temporary_name_for(path);
  FILE* f = std::fopen(tmp.c_str(), "wb");
  ICH_CHECK(f != nullptr, "cannot write " << path << ": " << std::strerror(errno));
  const size_t written = size ? std::fwrite(bytes, 1, size, f) : 0;
  const bool flushed = std::fflush(f) == 0;
  const int saved_errno = errno;
  const bool closed = std::fclose(f) == 0;
  if (written != size || !flushed || !closed) {
    std::remove(tmp.c_str());
    ICH_FAIL("cannot write " << path << ": " << std::strerror(saved_errno ? saved_errno : EIO)
                             << " (wrote " << written << " of " << size << " bytes)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    ICH_FAIL("cannot write " << path << ": rename failed: " << std::strerror(e));
  }
}

void write_file_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, text.data(), text.size());
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  ICH_CHECK(f != nullptr, "cannot read " << path << ": " << std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  size_t got = 0;
  while ((got = std::fread(chunk, 1, sizeof chunk, f)) > 0)
    bytes.insert(bytes.end(), chunk, chunk + got);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  ICH_CHECK(!failed, "cannot read " << path << ": read error");
  return bytes;
}

int64_t file_size(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? -1 : static_cast<int64_t>(size);
}

std::vector<std::string> list_files(const std::string& dir) {
  std::error_code ec;
  ICH_CHECK(fs::is_directory(dir, ec), dir << " is not a folder (or does not exist)");
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec)) names.push_back(entry.path().filename().string());
  }
  ICH_CHECK(!ec, "cannot list " << dir << ": " << ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

StagingDir::StagingDir(const std::string& destination, const std::string& marker_file)
    : destination_(destination) {
  ICH_CHECK(!destination.empty(), "the output folder name is empty");
  fs::path dest = fs::path(destination).lexically_normal();
  if (dest.filename().empty()) dest = dest.parent_path();  // "out/" -> "out"
  destination_ = dest.string();
  std::error_code ec;
  if (fs::exists(dest, ec)) {
    ICH_CHECK(fs::is_directory(dest, ec), destination_ << " exists and is not a folder");
    const bool empty = fs::is_empty(dest, ec);
    ICH_CHECK(empty || fs::exists(dest / marker_file, ec),
              destination_ << " is not empty and holds no " << marker_file
                           << " of an earlier run; refusing to replace it (choose a new folder)");
  }
  fs::path parent = dest.parent_path();
  if (parent.empty()) parent = ".";
  ICH_CHECK(fs::is_directory(parent, ec),
            "cannot create " << destination_ << ": " << parent.string() << " is not a folder");
  staging_ = (parent / ("." + dest.filename().string() + ".partial-" + std::to_string(::getpid())))
                 .string();
  fs::remove_all(staging_, ec);
  ICH_CHECK(fs::create_directory(staging_, ec) && !ec,
            "cannot create the output folder " << destination_ << ": " << ec.message());
}

StagingDir::~StagingDir() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(staging_, ec);  // best effort: a destructor must not throw
}

void StagingDir::commit() {
  ICH_CHECK(!committed_, "output " << destination_ << " committed twice");
  std::error_code ec;
  std::string old;
  if (fs::exists(destination_, ec)) {
    old = staging_ + ".old";
    fs::remove_all(old, ec);
    fs::rename(destination_, old, ec);
    ICH_CHECK(!ec, "cannot replace " << destination_ << ": " << ec.message());
  }
  fs::rename(staging_, destination_, ec);
  if (ec) {
    const std::string why = ec.message();
    if (!old.empty()) fs::rename(old, destination_, ec);  // put the earlier output back
    ICH_FAIL("cannot move the finished output into " << destination_ << ": " << why);
  }
  committed_ = true;
  if (!old.empty()) fs::remove_all(old, ec);
}

}  // namespace ich::data
