package org.peft4j.parallel;

import ai.djl.nn.core.Linear;

import org.peft4j.core.parallel.ShardGroup;
import org.peft4j.core.parallel.ShardedBlock;
import org.peft4j.lora.AdaptableLinear;

/**
 * A linear layer whose weight is split across a tensor-parallel group, by rows ({@link
 * ColumnParallelLinear}) or by columns ({@link RowParallelLinear}): what both hold beyond a {@link
 * Linear}, the group and the full layer's output features {@code O}.
 */
public abstract class ParallelLinear extends Linear implements ShardedBlock, AdaptableLinear {

    private final TensorParallel group;
    private final long outFeatures;

    /**
     * Creates the layer.
     *
     * @param local the builder of this rank's {@link Linear}
     * @param group the group the layer is split across
     * @param outFeatures the full layer's output features
     */
    protected ParallelLinear(Linear.Builder local, TensorParallel group, long outFeatures) {
        super(local);
        this.group = group;
        this.outFeatures = outFeatures;
    }

    /**
     * Returns the group the layer is split across.
     *
     * @return the group
     */
    public TensorParallel getGroup() {
        return group;
    }

    /**
     * Returns the full layer's output features.
     *
     * @return {@code O}
     */
    public long getOutFeatures() {
        return outFeatures;
    }

    /** {@inheritDoc} */
    @Override
    public ShardGroup getShardGroup() {
        return group;
    }
}
