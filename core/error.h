// ich::Error and the checking macros every layer uses.
//
// A failed check throws ich::Error whose what() is the caller's message followed
// by the failing statement and file:line, e.g.
//   masks/051.nii is 512x512x28 but ct_scans/051.nii is 512x512x30
//   [check `mask.dims == scan.dims` failed at data/ctich.cpp:120]
// The command line prints what() as one line on stderr and exits non-zero.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace ich {

class Error : public std::runtime_error {
public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

[[noreturn]] void throw_error(const char* statement, const char* file, int line,
                              const std::string& message);

}  // namespace ich

// ICH_CHECK(cond, a << b << c): the message is streamed, so it may mix text and numbers.
#define ICH_CHECK(cond, msg)                                         \
  do {                                                               \
    if (!(cond)) {                                                   \
      std::ostringstream ich_msg_;                                   \
      ich_msg_ << msg;                                               \
      ::ich::throw_error(#cond, __FILE__, __LINE__, ich_msg_.str()); \
    }                                                                \
  } while (0)

#define ICH_FAIL(msg)                                               \
  do {                                                              \
    std::ostringstream ich_msg_;                                    \
    ich_msg_ << msg;                                                \
    ::ich::throw_error(nullptr, __FILE__, __LINE__, ich_msg_.str()); \
  } while (0)
