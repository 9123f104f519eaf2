package org.peft4j.core.parallel;

import ai.djl.nn.Parameter;

/**
 * A block of a tensor-parallel model that holds one rank's part of some of its parameters (a
 * column- or row-parallel linear layer). Savers and loaders consult it to store the single-process
 * tensors, or this rank's parts, under the usual keys.
 */
public interface ShardedBlock {

    /**
     * Returns the ranks the block is split across.
     *
     * @return the group
     */
    ShardGroup getShardGroup();

    /**
     * Returns the number of ranks the block is split across.
     *
     * @return the tensor-parallel degree {@code T >= 1}
     */
    default int getTensorParallelDegree() {
        return getShardGroup().getDegree();
    }

    /**
     * Returns this rank's index in the tensor-parallel group.
     *
     * @return a number in {@code [0, T)}
     */
    default int getTensorParallelRank() {
        return getShardGroup().getRank();
    }

    /**
     * Returns how one of this block's parameters is split.
     *
     * @param parameter a parameter of this block
     * @return the sharding, or {@code null} when every rank holds the whole parameter
     */
    Sharding getSharding(Parameter parameter);
}
