package org.peft4j.parallel;

import org.peft4j.parallel.comm.Communicator;
import org.peft4j.parallel.comm.SingleProcess;

/**
 * How the processes of a run divide the work: {@code world = T x D} ranks, tensor-parallel groups
 * of {@code T} consecutive ranks that split the model, and data-parallel groups of the ranks that
 * hold the same part and train on different examples. Rank {@code r} is in tensor-parallel group
 * {@code r / T} at position {@code r % T}, and in data-parallel group {@code r % T} at position
 * {@code r / T}.
 */
public final class Parallelism implements AutoCloseable {

    private static final Parallelism SINGLE =
            new Parallelism(
                    SingleProcess.INSTANCE, TensorParallel.single(), SingleProcess.INSTANCE);

    private final Communicator world;
    private final TensorParallel tensorParallel;
    private final Communicator dataParallel;

    private Parallelism(Communicator world, TensorParallel tensorParallel, Communicator data) {
        this.world = world;
        this.tensorParallel = tensorParallel;
        this.dataParallel = data;
    }

    /**
     * Returns the layout of one process.
     *
     * @return degree 1 in both directions
     */
    public static Parallelism single() {
        return SINGLE;
    }

    /**
     * Divides a world into tensor- and data-parallel groups (a collective: every rank calls it).
     *
     * @param world every process of the run
     * @param tensorParallelDegree {@code T}, at least 1, which must divide the world's size
     * @return the layout
     * @throws IllegalArgumentException if {@code T} is below 1 or does not divide the world's size
     */
    public static Parallelism of(Communicator world, int tensorParallelDegree) {
        int size = world.getWorldSize();
        if (tensorParallelDegree < 1) {
            throw new IllegalArgumentException(
                    "tensorParallelDegree must be >= 1 (the ranks each model is split across), got "
                            + tensorParallelDegree);
        }
        if (size % tensorParallelDegree != 0) {
            throw new IllegalArgumentException(
                    "a tensor-parallel degree of "
                            + tensorParallelDegree
                            + " must divide the number of processes, "
                            + size
                            + (size == 1 ? " (not started by mpirun?)" : "")
                            + ": start a multiple of "
                            + tensorParallelDegree
                            + " processes (mpirun -np N); the ranks beyond one tensor-parallel"
                            + " group train data-parallel");
        }
        if (size == 1) {
            return SINGLE;
        }
        int rank = world.getRank();
        Communicator tp =
                tensorParallelDegree == 1
                        ? SingleProcess.INSTANCE
                        : tensorParallelDegree == size
                                ? world
                                : world.split(rank / tensorParallelDegree, rank);
        Communicator dp =
                tensorParallelDegree == 1
                        ? world
                        : tensorParallelDegree == size
                                ? SingleProcess.INSTANCE
                                : world.split(rank % tensorParallelDegree, rank);
        return new Parallelism(world, TensorParallel.of(tp), dp);
    }

    /**
     * Returns every process of the run.
     *
     * @return the world
     */
    public Communicator getWorld() {
        return world;
    }

    /**
     * Returns this rank's tensor-parallel group.
     *
     * @return the group that splits the model
     */
    public TensorParallel getTensorParallel() {
        return tensorParallel;
    }

    /**
     * Returns this rank's data-parallel group: the ranks that hold the same part of the model.
     *
     * @return the communicator over which gradients are summed
     */
    public Communicator getDataParallel() {
        return dataParallel;
    }

    /**
     * Returns whether this rank logs and writes files for the run.
     *
     * @return true on world rank 0
     */
    public boolean isLeader() {
        return world.getRank() == 0;
    }

    /** Frees the sub-groups this layout created; the world stays open. */
    @Override
    public void close() {
        Communicator tp = tensorParallel.getCommunicator();
        if (tp != world && tp != SingleProcess.INSTANCE) {
            tp.close();
        }
        if (dataParallel != world && dataParallel != SingleProcess.INSTANCE) {
            dataParallel.close();
        }
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "Parallelism(world "
                + world.getWorldSize()
                + " = tensor "
                + tensorParallel.getDegree()
                + " x data "
                + dataParallel.getWorldSize()
                + ", rank "
                + world.getRank()
                + ')';
    }
}
