package org.peft4j.parallel.comm;

/** Picks the communicator of a process from how it was launched. */
public final class Communicators {

    private Communicators() {}

    /**
     * Returns the world's communicator for CPU tensors: Open MPI's when a launcher started several
     * processes, otherwise the world of one.
     *
     * @return the communicator; the MPI one is shared by the process and finalised at exit
     * @throws IllegalStateException if several processes were launched but MPI cannot be loaded, or
     *     MPI's world disagrees with the environment (processes started by a launcher MPI does not
     *     know)
     */
    public static Communicator fromEnvironment() {
        LaunchEnvironment env = LaunchEnvironment.current();
        if (env.getWorldSize() == 1) {
            return SingleProcess.INSTANCE;
        }
        MpiCommunicator world = MpiCommunicator.world();
        if (world.getWorldSize() != env.getWorldSize() || world.getRank() != env.getRank()) {
            throw new IllegalStateException(
                    "the environment says "
                            + env
                            + " but MPI's world has rank "
                            + world.getRank()
                            + " of "
                            + world.getWorldSize()
                            + "; start the processes with mpirun (or srun with PMI support)");
        }
        return world;
    }
}
