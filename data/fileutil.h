// Files and folders written so that a failure never leaves half an output behind.
//
// A single file is written to a temporary name in its own folder and renamed over the
// final name once every byte is on disk. A command that produces a whole folder builds it
// in a staging folder next to the destination (".NAME.partial-PID") and swaps it into
// place only when it has succeeded; on any error the staging folder is removed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ich::data {

// Writes bytes to path through a temporary file in the same folder and a rename.
void write_file_atomic(const std::string& path, const void* bytes, size_t size);
void write_file_atomic(const std::string& path, const std::string& text);

// A temporary name next to path that keeps its extension (nifti_clib and image writers
// choose the format by extension): "dir/.NAME.tmp-PID-N.EXT".
std::string temporary_name_for(const std::string& path);

// The whole file; throws ich::Error naming the file when it cannot be read.
std::vector<uint8_t> read_file_bytes(const std::string& path);
int64_t file_size(const std::string& path);  // -1 when the file does not exist

// Files (not folders) directly inside dir, sorted by name; throws when dir is not a folder.
std::vector<std::string> list_files(const std::string& dir);

// The folder a command writes. The destination must not exist, be empty, or hold an earlier
// output of the same command (recognised by marker_file inside it); anything else is refused
// so that a typo never replaces a user's folder.
class StagingDir {
 public:
  StagingDir(const std::string& destination, const std::string& marker_file);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  // Where to write now.
  const std::string& path() const { return staging_; }
  // Moves the staging folder to the destination (replacing an earlier output).
  void commit();

 private:
  std::string destination_;
  std::string staging_;
  bool committed_ = false;
};

}  // namespace ich::data
