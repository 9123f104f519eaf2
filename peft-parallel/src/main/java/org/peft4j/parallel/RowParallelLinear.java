package org.peft4j.parallel;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import org.peft4j.core.parallel.AxisSharding;
import org.peft4j.core.parallel.ShardGroup;
import org.peft4j.core.parallel.ShardedBlock;
import org.peft4j.core.parallel.Sharding;
import org.peft4j.lora.AdaptableLinear;
import org.peft4j.lora.LoRALinear;

/**
 * A linear layer split by input features across a tensor-parallel group: rank {@code k} holds
 * columns {@code [k I/T, (k+1) I/T)} of {@code W [O, I]}, takes the matching part of the input (the
 * output of a column-parallel layer), and the partial products are summed by an all-reduce. The
 * bias is whole on every rank and added once, after the sum.
 *
 * <pre>
 *   y = sum_k x_k W_k^T + b     x_k: [..., I/T]   W_k: [O, I/T]   y: [..., O] on every rank
 * </pre>
 *
 * <p>With LoRA it becomes a {@link RowParallelLoRALinear}.
 */
public class RowParallelLinear extends Linear implements ShardedBlock, AdaptableLinear {

    private final TensorParallel group;
    private final long outFeatures;
    private final Sharding columns;

    RowParallelLinear(Builder builder) {
        super(Linear.builder().setUnits(builder.fullUnits()).optBias(builder.bias));
        this.group = builder.group;
        this.outFeatures = builder.fullUnits();
        this.columns = new AxisSharding(group, 1);
    }

    /**
     * Creates a builder.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
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
     * Returns the output features, whole on every rank.
     *
     * @return {@code O}
     */
    public long getOutFeatures() {
        return outFeatures;
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray x = inputs.singletonOrThrow();
        NDArray w = ps.getValue(getParameters().get("weight"), x.getDevice(), training);
        NDArray y = group.allReduce(linear(x, w).head(), training);
        Parameter bias = getParameters().get("bias");
        if (bias != null) {
            y = y.add(ps.getValue(bias, x.getDevice(), training));
        }
        return new NDList(y);
    }

    /** {@inheritDoc} */
    @Override
    public ShardGroup getShardGroup() {
        return group;
    }

    /** {@inheritDoc} */
    @Override
    public Sharding getSharding(Parameter parameter) {
        return parameter == getParameters().get("weight") ? columns : null;
    }

    /** {@inheritDoc} */
    @Override
    public LoRALinear adapt(LoRALinear.Builder builder) {
        return new RowParallelLoRALinear(builder, this);
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "RowParallelLinear(" + outFeatures + ", input split " + group.getDegree() + " ways)";
    }

    /** The builder of {@link RowParallelLinear}: {@code set*} is required, {@code opt*} not. */
    public static final class Builder extends ParallelLinearBuilder<Builder> {

        Builder() {}

        /** {@inheritDoc} */
        @Override
        protected Builder self() {
            return this;
        }

        /**
         * Builds the layer. Its input features are this rank's part, {@code I/T}, known from the
         * first input shape.
         *
         * @return the layer
         * @throws IllegalArgumentException if no group is set
         */
        @Override
        public RowParallelLinear build() {
            validate();
            return new RowParallelLinear(this);
        }
    }
}
