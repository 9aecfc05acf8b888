// Command-line mistakes as one line on stderr (CLI11's own exit() prints two) and exit code 2;
// --help still prints the help and exits 0.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>

namespace ich::app {

inline int report_parse_error(CLI::App& app, const CLI::ParseError& e) {
  if (e.get_exit_code() == 0) return app.exit(e);
  std::fprintf(stderr, "%s: error: %s (%s --help lists the options)\n", app.get_name().c_str(),
               e.what(), app.get_name().c_str());
  return 2;
}

}  // namespace ich::app
