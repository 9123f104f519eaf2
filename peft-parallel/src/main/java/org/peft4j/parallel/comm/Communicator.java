package org.peft4j.parallel.comm;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * Collective operations among the processes (ranks) of a group. Every rank must call the same
 * collectives in the same order with arrays of the same shape and type.
 *
 * <p>Arrays are dense; float32, float64, int32 and int64 are supported by every backend.
 */
public interface Communicator extends AutoCloseable {

    /**
     * Returns this process's rank in the group.
     *
     * @return a number in {@code [0, worldSize)}
     */
    int getRank();

    /**
     * Returns the number of ranks in the group.
     *
     * @return at least 1
     */
    int getWorldSize();

    /**
     * Replaces an array by the element-wise sum of that array over every rank.
     *
     * @param array the array, changed in place
     */
    void allReduceSum(NDArray array);

    /**
     * Concatenates every rank's array along an axis, in rank order.
     *
     * @param array this rank's part; the same shape on every rank
     * @param axis the axis to concatenate along
     * @return a new array, {@code worldSize} times longer along {@code axis}, attached to {@code
     *     array}'s manager
     */
    NDArray allGather(NDArray array, int axis);

    /**
     * Replaces an array on every rank by the root's.
     *
     * @param array the array, changed in place on every rank but the root
     * @param root the rank whose array is sent
     */
    void broadcast(NDArray array, int root);

    /** Waits until every rank has called it. */
    void barrier();

    /**
     * Sums a number over the ranks (a loss, a count, a squared norm).
     *
     * @param value this rank's value
     * @return the sum over every rank
     */
    default double sum(double value) {
        return sums(value)[0];
    }

    /**
     * Sums several numbers over the ranks in one collective (a loss with its counts).
     *
     * @param values this rank's values
     * @return the element-wise sums over every rank, a new array
     */
    default double[] sums(double... values) {
        if (getWorldSize() == 1) {
            return values.clone();
        }
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray array = manager.create(values);
            allReduceSum(array);
            return array.toDoubleArray();
        }
    }

    /**
     * Splits the group: ranks that pass the same color form a new group, ordered by key.
     *
     * @param color the group to join
     * @param key the order within the new group
     * @return the new group's communicator, to be closed by the caller
     */
    Communicator split(int color, int key);

    /** Releases the group; the world's communicator also ends the backend (MPI_Finalize). */
    @Override
    void close();
}
