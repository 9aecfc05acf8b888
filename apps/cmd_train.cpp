// ichseg train --data DIR --out RUN_DIR [options]: trains the U-Net (apps/trainer.h).
// Settings come from defaults < --preset < --config FILE < flags (apps/train_config.h).
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "apps/cli_errors.h"
#include "apps/command.h"
#include "apps/run_folder.h"
#include "apps/train_config.h"
#include "apps/trainer.h"
#include "engine/process_group.h"

namespace {

using namespace ich::app;

// defaults < --preset < --config FILE < flags; resuming: the run's config.json < flags.
TrainConfig resolve_config(const CLI::App& app, const TrainConfig& flags,
                           const TrainOptions& options, const std::string& config_file) {
  TrainConfig config;
  if (options.resume) {
    const RunFolder run(options.out_dir);
    ICH_CHECK(std::filesystem::exists(run.config_json()),
              "cannot resume: " << run.config_json().string()
                                << " does not exist (is --out the folder of a run?)");
    config = run.read_config();
  } else {
    nlohmann::json file;
    if (!config_file.empty()) file = read_json_file(config_file);
    std::string preset = file.is_object() && file.contains("preset") && file["preset"].is_string()
                             ? file["preset"].get<std::string>()
                             : "";
    if (app.get_option("--preset")->count()) preset = flags.preset;
    apply_preset(preset, &config);
    if (!config_file.empty()) config.merge_json(file, config_file);
    config.preset = preset;
  }
  apply_given_options(app, flags, &config);
  if (app.get_option("--full-slice")->count()) config.patch = 0;
  return config;
}

// Rank 0's settings on every rank (rank 0 alone reads the files they come from).
TrainConfig same_on_every_rank(const TrainConfig& root_config, ich::ProcessGroup* comm) {
  if (!comm) return root_config;
  std::string text = comm->is_root() ? root_config.to_json().dump() : std::string();
  comm->broadcast_string(&text);
  if (comm->is_root()) return root_config;
  return TrainConfig::from_json(nlohmann::json::parse(text), "the settings of rank 0");
}

int run_train(int argc, char** argv) {
  CLI::App app{"Train the ICH U-Net on a prepared folder or a CT-ICH folder", "ichseg train"};
  TrainConfig flags;
  TrainOptions options;
  std::string config_file;
  bool print_config = false;
  app.add_option("--out", options.out_dir, "run folder (log, checkpoints, samples); required");
  app.add_option("--config", config_file,
                 "JSON file of settings (keys as the flags: \"lr\", \"train_split\"; a run's "
                 "config.json works)");
  app.add_flag("--resume", options.resume,
               "continue the run in --out from its last checkpoint (its config.json, then any "
               "flags given)");
  app.add_flag("--full-slice", "train on whole slices (the same as --patch 0)");
  app.add_flag("--print-config", print_config, "print the resolved settings as JSON and exit");
  app.add_option("--stop-at-step", options.stop_at_step,
                 "test hook: stop as on SIGINT after this many steps of the run");
  app.add_option("--kill-at-step", options.kill_at_step,
                 "test hook: the last rank kills itself (SIGKILL) before this step");
  app.add_option("--hang-at-step", options.hang_at_step,
                 "test hook: the last rank sleeps forever before this step");
  add_config_options(app, &flags);
  if (const int code = parse_command_line(app, argc, argv); code >= 0) return code;
  for (int i = 0; i < argc; ++i)
    options.command_line += (i ? " " : "ichseg ") + std::string(argv[i]);

  // Data parallel: every process of `mpirun -np N` joins the MPI world here (a process not
  // started by mpirun is a world of one). Rank 0 resolves the settings (its run folder holds
  // config.json when resuming) and sends them to the others.
  std::unique_ptr<ich::ProcessGroup> comm;
  if (ich::launched_by_mpirun() || flags.distributed != "none") comm = ich::open_process_group();
  const bool root = !comm || comm->is_root();
  try {
    TrainConfig config = same_on_every_rank(
        root ? resolve_config(app, flags, options, config_file) : TrainConfig{}, comm.get());
    if (print_config) {
      if (root) std::cout << config.to_json().dump(2) << std::endl;
      return 0;
    }
    config.validate();
    ICH_CHECK(!options.out_dir.empty(), "no run folder: pass --out RUN_DIR");
    if (comm) {
      if (comm->size() == 1 && config.distributed == "none") {
        comm.reset();  // a resumed single-process run
      } else {
        comm->set_timeout_s(config.mpi_timeout);
        options.comm = comm.get();
      }
    }
    const TrainResult r = run_training(config, options);
    if (r.stop_signal) return 128 + r.stop_signal;
    return 0;
  } catch (const std::exception& e) {
    // One rank's error ends every rank of the job, with the message, within the timeout.
    if (comm && comm->size() > 1) {
      const std::string what = e.what();
      // Errors of the communicator already say "rank R: ..."; abort() names the rank of others.
      comm->abort(what.compare(0, 5, "rank ") == 0 ? what : "ichseg train: error: " + what);
    }
    throw;
  }
}

}  // namespace

ICH_COMMAND("train", "train the U-Net (progress, log.csv, checkpoints, samples in --out)",
            run_train);
