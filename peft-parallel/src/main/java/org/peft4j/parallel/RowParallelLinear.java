package org.peft4j.parallel;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import org.peft4j.core.parallel.AxisSharding;
import org.peft4j.core.parallel.Sharding;
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
public class RowParallelLinear extends ParallelLinear {

    private final Sharding columns;

    RowParallelLinear(Builder builder) {
        super(
                Linear.builder().setUnits(builder.fullUnits()).optBias(builder.bias),
                builder.group,
                builder.fullUnits());
        this.columns = new AxisSharding(builder.group, 1);
    }

    /**
     * Creates a builder.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray x = inputs.singletonOrThrow();
        NDArray w = ps.getValue(getParameters().get("weight"), x.getDevice(), training);
        NDArray y = getGroup().allReduce(linear(x, w).head(), training);
        Parameter bias = getParameters().get("bias");
        if (bias != null) {
            y = y.add(ps.getValue(bias, x.getDevice(), training));
        }
        return new NDList(y);
    }

    /** {@inheritDoc} */
    @Override
    public Sharding getSharding(Parameter parameter) {
        return parameter == getParameters().get("weight") ? columns : null;
    }

    /**
     * {@inheritDoc}
     *
     * <p>A collective when this layer's weight is set: {@code B}, whole on every rank, is
     * broadcast from rank 0, so every rank of the group adapts the same layers in the same order.
     */
    @Override
    public LoRALinear adapt(LoRALinear.Builder builder) {
        return RowParallelLoRALinear.wrap(builder, this);
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "RowParallelLinear("
                + getOutFeatures()
                + ", input split "
                + getGroup().getDegree()
                + " ways)";
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
