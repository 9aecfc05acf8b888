// ichseg report RUN_DIR [--out FILE]
#include <CLI/CLI.hpp>
#include <cstdio>

#include "apps/command.h"
#include "apps/report.h"

namespace {

int run_report(int argc, char** argv) {
  CLI::App app{"Write one self-contained HTML page about a training run (curves, metrics, overlays)",
               "ichseg report"};
  std::string run_dir, out;
  app.add_option("run_dir", run_dir, "the --out folder of ichseg train")->required();
  app.add_option("--out", out, "where to write the page (default RUN_DIR/report.html)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const std::string path = ich::app::write_report(run_dir, out);
  std::printf("wrote %s\n", path.c_str());
  return 0;
}

}  // namespace

ICH_COMMAND("report", "write an HTML page about a training run (curves, metrics, overlays)",
            run_report);
