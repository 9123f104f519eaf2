package org.peft4j.parallel;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;

import org.peft4j.core.parallel.ShardGroup;
import org.peft4j.core.parallel.ShardedBlock;
import org.peft4j.lora.LoRALinear;

/**
 * A LoRA layer split across a tensor-parallel group, one of whose adapter matrices is whole on
 * every rank: that matrix is drawn on rank 0 and broadcast as soon as it exists, so that every rank
 * starts from the same adapter.
 */
public abstract class ParallelLoRALinear extends LoRALinear implements ShardedBlock {

    private final TensorParallel group;
    private final boolean replicatedA;

    /**
     * Wraps a split layer.
     *
     * @param builder the LoRA settings
     * @param outFeatures the rows of this rank's weight
     * @param group the group
     * @param replicatedA true if {@code A} is whole on every rank, false if {@code B} is
     */
    protected ParallelLoRALinear(
            LoRALinear.Builder builder,
            long outFeatures,
            TensorParallel group,
            boolean replicatedA) {
        super(builder, outFeatures);
        this.group = group;
        this.replicatedA = replicatedA;
        if (replicated().isInitialized()) {
            group.getCommunicator().broadcast(replicated().getArray(), 0);
        }
    }

    private Parameter replicated() {
        return replicatedA ? getLoraA() : getLoraB();
    }

    /**
     * Returns the group the layer is split across.
     *
     * @return the group
     */
    public TensorParallel getGroup() {
        return group;
    }

    /** {@inheritDoc} */
    @Override
    public void initialize(NDManager manager, DataType dataType, Shape... inputShapes) {
        boolean fresh = !replicated().isInitialized();
        super.initialize(manager, dataType, inputShapes);
        if (fresh) {
            group.getCommunicator().broadcast(replicated().getArray(), 0);
        }
    }

    /** {@inheritDoc} */
    @Override
    public ShardGroup getShardGroup() {
        return group;
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return getClass().getSimpleName()
                + '('
                + getPath()
                + ", r="
                + getR()
                + ", split "
                + group.getDegree()
                + " ways)";
    }
}
