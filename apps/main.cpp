// ichseg: one binary, one subcommand per step of the pipeline.
// Errors reach the user as one line on stderr and a non-zero exit.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>

#include "apps/command.h"
#include "core/error.h"
#include "engine/runtime_info.h"

namespace ich::app {

std::vector<Command>& commands() {
  static std::vector<Command> all;
  return all;
}

}  // namespace ich::app

namespace {

void usage(FILE* out) {
  auto cmds = ich::app::commands();
  std::sort(cmds.begin(), cmds.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  std::fprintf(
      out,
      "usage: ichseg COMMAND [options]   (ichseg COMMAND --help for its options)\n\ncommands:\n");
  for (const auto& c : cmds) std::fprintf(out, "  %-10s %s\n", c.name.c_str(), c.summary.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  ich::use_fast_cpu_kernels(argv);  // may execute ichseg again (engine/runtime_info.h)
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (const auto& c : ich::app::commands()) {
    if (c.name != argv[1]) continue;
    try {
      ich::check_backend_settings();  // a bad ICH_CONV_ALGO fails here, before any work
      return c.run(argc - 1, argv + 1);
    } catch (const ich::Error& e) {
      std::fprintf(stderr, "ichseg %s: error: %s\n", argv[1], e.what());
      return 1;
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "ichseg %s: error: out of memory\n", argv[1]);
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "ichseg %s: error: %s\n", argv[1], e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "ichseg: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
