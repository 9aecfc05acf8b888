// Command-line mistakes as one line on stderr (CLI11's own exit() prints two) and exit code 2;
// --help still prints the help and exits 0. A command starts with
//   if (const int code = parse_command_line(app, argc, argv); code >= 0) return code;
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

// Parses argv into app: -1 when the command goes on, otherwise the exit code to return (0
// after --help, 2 after a mistake reported in one line).
inline int parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return report_parse_error(app, e);
  }
  return -1;
}

}  // namespace ich::app
