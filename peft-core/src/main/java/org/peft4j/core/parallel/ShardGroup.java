package org.peft4j.core.parallel;

import ai.djl.ndarray.NDArray;

/**
 * The ranks a model is split across, as adapters see them: enough to cut, gather and wait, with the
 * collective backend behind it (peft-parallel's {@code TensorParallel}).
 */
public interface ShardGroup {

    /**
     * Returns the group of one process.
     *
     * @return a group of degree 1 whose gather copies and whose barrier returns at once
     */
    static ShardGroup single() {
        return SingleRank.INSTANCE;
    }

    /**
     * Returns the number of ranks.
     *
     * @return the tensor-parallel degree {@code T >= 1}
     */
    int getDegree();

    /**
     * Returns this process's rank.
     *
     * @return a number in {@code [0, T)}
     */
    int getRank();

    /**
     * Concatenates every rank's part along an axis, in rank order (a collective).
     *
     * @param local this rank's part; the same shape on every rank
     * @param axis the axis, non-negative
     * @return a new array
     */
    NDArray allGather(NDArray local, int axis);

    /** Waits until every rank has called it. */
    void barrier();
}
