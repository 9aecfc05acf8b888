#include "core/error.h"

namespace ich {

void throw_error(const char* statement, const char* file, int line, const std::string& message) {
  std::ostringstream os;
  os << message;
  if (statement != nullptr) {
    os << " [check `" << statement << "` failed at " << file << ":" << line << "]";
  } else {
    os << " [at " << file << ":" << line << "]";
  }
  throw Error(os.str());
}

}  // namespace ich
