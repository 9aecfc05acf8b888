// ichseg report RUN_DIR [--out FILE]
// ichseg report --compare NAME=RUN_DIR [--compare NAME=RUN_DIR ...] --out FILE.svg
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "apps/cli_errors.h"
#include "apps/command.h"
#include "apps/report.h"
#include "core/error.h"
#include "data/fileutil.h"

namespace {

int run_report(int argc, char** argv) {
  CLI::App app{
      "Write one self-contained HTML page about a training run (curves, metrics, overlays)",
      "ichseg report"};
  std::string run_dir, out;
  std::vector<std::string> compare;
  app.add_option("run_dir", run_dir, "the --out folder of ichseg train");
  app.add_option("--out", out,
                 "where to write the page (default RUN_DIR/report.html), or the SVG of --compare");
  app.add_option("--compare", compare,
                 "NAME=RUN_DIR, repeatable: write one SVG of these runs' curves per epoch "
                 "(validation loss, validation Dice, training loss) to --out instead");
  if (const int code = ich::app::parse_command_line(app, argc, argv); code >= 0) return code;
  if (!compare.empty()) {
    ICH_CHECK(run_dir.empty(), "pass either RUN_DIR or --compare NAME=RUN_DIR, not both");
    ICH_CHECK(!out.empty(), "--compare needs --out FILE.svg");
    std::vector<std::pair<std::string, std::string>> runs;
    for (const std::string& item : compare) {
      const size_t eq = item.find('=');
      ICH_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < item.size(),
                "--compare '" << item << "' is not NAME=RUN_DIR");
      runs.emplace_back(item.substr(0, eq), item.substr(eq + 1));
    }
    ich::data::write_file_atomic(out, ich::app::compare_runs_svg(runs));
    std::printf("wrote %s\n", out.c_str());
    return 0;
  }
  ICH_CHECK(!run_dir.empty(), "no run folder: ichseg report RUN_DIR (or --compare NAME=RUN_DIR)");
  const std::string path = ich::app::write_report(run_dir, out);
  std::printf("wrote %s\n", path.c_str());
  return 0;
}

}  // namespace

ICH_COMMAND("report", "write an HTML page about a training run (curves, metrics, overlays)",
            run_report);
