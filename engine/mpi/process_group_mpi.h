// The MPI world as a ProcessGroup (engine/process_group.h); built only with ICH_MPI=ON.
#pragma once

#include <memory>

#include "engine/process_group.h"

namespace ich {

// Initialises MPI (when nobody did yet) and returns its world, on a private duplicate of
// MPI_COMM_WORLD whose errors come back as ich::Error. Called by open_process_group() when
// this process was started by mpirun.
std::unique_ptr<ProcessGroup> open_mpi_world(double timeout_s);

}  // namespace ich
