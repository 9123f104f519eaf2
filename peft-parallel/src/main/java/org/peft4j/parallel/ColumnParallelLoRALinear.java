package org.peft4j.parallel;

import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import org.peft4j.core.parallel.AxisSharding;
import org.peft4j.core.parallel.Sharding;
import org.peft4j.lora.LoRALinear;

/**
 * LoRA on a {@link ColumnParallelLinear}: {@code B} is split by rows with {@code W}, {@code A} is
 * whole and identical on every rank.
 *
 * <pre>
 *   y_k = x W_k^T + b_k + s (x A^T) B_k^T    A: [r, I]   B_k: [O/T, r]   y_k: [..., O/T]
 * </pre>
 *
 * <p>Merging adds {@code s B_k A} to {@code W_k}: rows {@code k} of {@code s B A}, so merging every
 * rank's part is merging the full layer.
 */
public class ColumnParallelLoRALinear extends ParallelLoRALinear {

    private final ColumnParallelLinear base;
    private final Sharding rows;

    /**
     * Wraps a column-parallel layer; {@link ColumnParallelLinear#adapt} calls this, then {@link
     * #initializeAcrossGroup()}.
     *
     * @param builder the LoRA settings
     * @param base the layer to wrap
     */
    protected ColumnParallelLoRALinear(LoRALinear.Builder builder, ColumnParallelLinear base) {
        this(builder, base, new AxisSharding(base.getGroup(), 0));
    }

    private ColumnParallelLoRALinear(
            LoRALinear.Builder builder, ColumnParallelLinear base, Sharding rows) {
        super(builder, base.getLocalOutFeatures(), base.getGroup(), null, rows);
        this.base = base;
        this.rows = rows;
    }

    /**
     * Builds the adapted layer of a column-parallel layer, its adapter created and {@code A}
     * broadcast if the layer's weight is set: a collective then, as {@link
     * #initializeAcrossGroup()} is.
     *
     * @param builder the LoRA settings
     * @param base the layer to wrap
     * @return the adapted layer
     */
    static ColumnParallelLoRALinear wrap(LoRALinear.Builder builder, ColumnParallelLinear base) {
        ColumnParallelLoRALinear layer = new ColumnParallelLoRALinear(builder, base);
        layer.initializeAcrossGroup();
        return layer;
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDList local = super.forwardInternal(ps, inputs, training, params);
        if (!base.isGatherOutput()) {
            return local;
        }
        return new NDList(getGroup().allGather(local.head(), -1, training));
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputs) {
        return base.getOutputShapes(inputs);
    }

    /** {@inheritDoc} */
    @Override
    public Sharding getSharding(Parameter parameter) {
        return parameter == getWeight() || parameter == getBias() || isLoraB(parameter)
                ? rows
                : null;
    }
}
