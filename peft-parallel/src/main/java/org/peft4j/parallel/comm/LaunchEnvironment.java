package org.peft4j.parallel.comm;

import java.util.Map;

/**
 * The rank, world size and local rank that a launcher put into the environment of each process:
 * Open MPI's {@code mpirun} ({@code OMPI_COMM_WORLD_*}), PMI-based launchers such as MPICH's
 * ({@code PMI_RANK}, {@code PMI_SIZE}), Slurm's {@code srun} ({@code SLURM_PROCID}, {@code
 * SLURM_NTASKS}, {@code SLURM_LOCALID}) and torchrun-style schedulers ({@code RANK}, {@code
 * WORLD_SIZE}, {@code LOCAL_RANK}). Without any of them the process is a world of one.
 */
public final class LaunchEnvironment {

    private static final String[][] LAUNCHERS = {
        {"mpirun", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
        {"pmi", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"},
        {"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"},
        {"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK"},
    };

    private final String launcher;
    private final int rank;
    private final int worldSize;
    private final int localRank;

    private LaunchEnvironment(String launcher, int rank, int worldSize, int localRank) {
        this.launcher = launcher;
        this.rank = rank;
        this.worldSize = worldSize;
        this.localRank = localRank;
    }

    /**
     * Reads this process's environment.
     *
     * @return what the launcher set, or a world of one
     */
    public static LaunchEnvironment current() {
        return of(System.getenv());
    }

    /**
     * Reads an environment.
     *
     * @param env the variables
     * @return what the first launcher found set, or a world of one
     * @throws IllegalArgumentException if a variable is not a number, or the rank lies outside the
     *     world
     */
    public static LaunchEnvironment of(Map<String, String> env) {
        for (String[] launcher : LAUNCHERS) {
            if (env.containsKey(launcher[1]) && env.containsKey(launcher[2])) {
                int rank = number(env, launcher[1]);
                int size = number(env, launcher[2]);
                int local = env.containsKey(launcher[3]) ? number(env, launcher[3]) : rank;
                if (size < 1 || rank < 0 || rank >= size || local < 0) {
                    throw new IllegalArgumentException(
                            launcher[1]
                                    + "="
                                    + rank
                                    + " and "
                                    + launcher[2]
                                    + "="
                                    + size
                                    + " do not describe a rank of a world; check the launcher");
                }
                return new LaunchEnvironment(launcher[0], rank, size, local);
            }
        }
        return new LaunchEnvironment("none", 0, 1, 0);
    }

    private static int number(Map<String, String> env, String key) {
        try {
            return Integer.parseInt(env.get(key).trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(
                    "environment variable " + key + "=\"" + env.get(key) + "\" is not a number", e);
        }
    }

    /**
     * Returns which launcher set the variables.
     *
     * @return {@code mpirun}, {@code pmi}, {@code slurm}, {@code torchrun} or {@code none}
     */
    public String getLauncher() {
        return launcher;
    }

    /**
     * Returns this process's rank in the world.
     *
     * @return a number in {@code [0, worldSize)}
     */
    public int getRank() {
        return rank;
    }

    /**
     * Returns the number of processes.
     *
     * @return at least 1
     */
    public int getWorldSize() {
        return worldSize;
    }

    /**
     * Returns this process's rank among those on its host, which picks its GPU.
     *
     * @return a number &gt;= 0
     */
    public int getLocalRank() {
        return localRank;
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return launcher + ": rank " + rank + " of " + worldSize + " (local " + localRank + ')';
    }
}
