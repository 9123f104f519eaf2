package org.peft4j.parallel;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import org.peft4j.core.parallel.AxisSharding;
import org.peft4j.core.parallel.Sharding;
import org.peft4j.lora.LoRALinear;

/**
 * A linear layer split by output features across a tensor-parallel group: rank {@code k} holds rows
 * {@code [k O/T, (k+1) O/T)} of {@code W [O, I]} and of {@code b}, and computes those output
 * features from the whole input.
 *
 * <pre>
 *   y_k = x W_k^T + b_k        x: [..., I]   W_k: [O/T, I]   y_k: [..., O/T]
 *   y = concat_k y_k           (with gatherOutput: [..., O] on every rank)
 * </pre>
 *
 * <p>With LoRA it becomes a {@link ColumnParallelLoRALinear}.
 */
public class ColumnParallelLinear extends ParallelLinear {

    private final long localOutFeatures;
    private final boolean gatherOutput;
    private final Sharding rows;

    ColumnParallelLinear(Builder builder, long localOutFeatures) {
        super(
                Linear.builder().setUnits(localOutFeatures).optBias(builder.bias),
                builder.group,
                builder.fullUnits());
        this.localOutFeatures = localOutFeatures;
        this.gatherOutput = builder.gatherOutput;
        this.rows = new AxisSharding(builder.group, 0);
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
     * Returns this rank's output features, the rows of its weight.
     *
     * @return {@code O / T}
     */
    public long getLocalOutFeatures() {
        return localOutFeatures;
    }

    /**
     * Returns whether every rank's output is gathered into the full output.
     *
     * @return true if the output is {@code [..., O]}, false if {@code [..., O/T]}
     */
    public boolean isGatherOutput() {
        return gatherOutput;
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray y = super.forwardInternal(ps, inputs, training, params).head();
        return new NDList(gatherOutput ? getGroup().allGather(y, -1, training) : y);
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputs) {
        Shape input = inputs[0];
        return new Shape[] {
            input.slice(0, input.dimension() - 1)
                    .add(gatherOutput ? getOutFeatures() : localOutFeatures)
        };
    }

    /** {@inheritDoc} */
    @Override
    public Sharding getSharding(Parameter parameter) {
        return parameter == getParameters().get("weight")
                        || parameter == getParameters().get("bias")
                ? rows
                : null;
    }

    /**
     * {@inheritDoc}
     *
     * <p>A collective when this layer's weight is set: {@code A}, whole on every rank, is
     * broadcast from rank 0, so every rank of the group adapts the same layers in the same order.
     */
    @Override
    public LoRALinear adapt(LoRALinear.Builder builder) {
        return ColumnParallelLoRALinear.wrap(builder, this);
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "ColumnParallelLinear("
                + getOutFeatures()
                + " split "
                + getGroup().getDegree()
                + " ways)";
    }

    /** The builder of {@link ColumnParallelLinear}: {@code set*} is required, {@code opt*} not. */
    public static final class Builder extends ParallelLinearBuilder<Builder> {

        boolean gatherOutput;

        Builder() {}

        /** {@inheritDoc} */
        @Override
        protected Builder self() {
            return this;
        }

        /**
         * Sets whether every rank's output is gathered into the full output.
         *
         * @param gatherOutput default false (each rank keeps its {@code O/T} features)
         * @return this builder
         */
        public Builder optGatherOutput(boolean gatherOutput) {
            this.gatherOutput = gatherOutput;
            return this;
        }

        /**
         * Builds the layer.
         *
         * @return the layer
         * @throws IllegalArgumentException if no group is set, or the degree does not divide the
         *     units
         */
        @Override
        public ColumnParallelLinear build() {
            validate();
            return new ColumnParallelLinear(this, group.part(units, "the output features"));
        }
    }
}
