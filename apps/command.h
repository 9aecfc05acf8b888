// The ichseg subcommands. Each command lives in its own apps/cmd_*.cpp and registers
// itself with ICH_COMMAND; main() dispatches on the first argument.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace ich::app {

// argv[0] is the command's name ("synth"), the rest its arguments.
using CommandFn = std::function<int(int argc, char** argv)>;

struct Command {
  std::string name;
  std::string summary;
  CommandFn run;
};

std::vector<Command>& commands();

struct RegisterCommand {
  RegisterCommand(std::string name, std::string summary, CommandFn fn) {
    commands().push_back({std::move(name), std::move(summary), std::move(fn)});
  }
};

}  // namespace ich::app

#define ICH_COMMAND_CAT2(a, b) a##b
#define ICH_COMMAND_CAT(a, b) ICH_COMMAND_CAT2(a, b)
// ICH_COMMAND("synth", "write a synthetic CT-ICH dataset", run_synth);
#define ICH_COMMAND(name, summary, fn) \
  static ::ich::app::RegisterCommand ICH_COMMAND_CAT(ich_command_, __LINE__)(name, summary, fn)
