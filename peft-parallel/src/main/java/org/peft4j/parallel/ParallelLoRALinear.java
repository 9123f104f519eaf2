package org.peft4j.parallel;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;

import org.peft4j.core.parallel.ShardGroup;
import org.peft4j.core.parallel.ShardedBlock;
import org.peft4j.core.parallel.Sharding;
import org.peft4j.lora.LoRALinear;

/**
 * A LoRA layer split across a tensor-parallel group, one of whose adapter matrices is split with
 * the weight and the other whole on every rank. The whole one is drawn on every rank and then
 * broadcast from rank 0, so that every rank starts from the same adapter even if the ranks' random
 * generators differ; the split one is drawn whole and cut, as {@link LoRALinear} says.
 *
 * <p>The broadcast is a collective, so it happens at two points every rank reaches together, never
 * in the constructor: {@link #initializeAcrossGroup()}, which the factory that builds the layer
 * ({@link ColumnParallelLinear#adapt}, {@link RowParallelLinear#adapt}) calls right after
 * construction, and {@link #initialize}, for a layer whose weight was not yet set then.
 */
public abstract class ParallelLoRALinear extends LoRALinear implements ShardedBlock {

    private final TensorParallel group;
    private final boolean replicatedA;

    /**
     * Wraps a split layer. Exactly one of the shardings is null: that matrix is whole on every
     * rank. The constructor only declares the parameters; it neither draws nor communicates.
     *
     * @param builder the LoRA settings
     * @param outFeatures the rows of this rank's weight
     * @param group the group
     * @param shardingOfA how {@code A} is cut from the full layer's, or null if it is whole
     * @param shardingOfB how {@code B} is cut from the full layer's, or null if it is whole
     * @throws IllegalArgumentException if both shardings are null, or neither is
     */
    protected ParallelLoRALinear(
            LoRALinear.Builder builder,
            long outFeatures,
            TensorParallel group,
            Sharding shardingOfA,
            Sharding shardingOfB) {
        super(builder, outFeatures, shardingOfA, shardingOfB);
        if ((shardingOfA == null) == (shardingOfB == null)) {
            throw new IllegalArgumentException(
                    "a parallel LoRA layer splits exactly one of A and B, got shardings "
                            + shardingOfA
                            + " and "
                            + shardingOfB);
        }
        this.group = group;
        this.replicatedA = shardingOfA == null;
    }

    private Parameter replicated() {
        return replicatedA ? getLoraA() : getLoraB();
    }

    /**
     * Creates the adapter if the wrapped weight is set ({@link #initializeAdapterFromBase()}) and
     * broadcasts the whole matrix from rank 0. A collective when it creates the adapter: every rank
     * of the group calls it for the same layer, in the same order; the factories call it right
     * after the constructor.
     */
    protected final void initializeAcrossGroup() {
        boolean fresh = !replicated().isInitialized();
        initializeAdapterFromBase();
        if (fresh && replicated().isInitialized()) {
            group.getCommunicator().broadcast(replicated().getArray(), 0);
        }
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
