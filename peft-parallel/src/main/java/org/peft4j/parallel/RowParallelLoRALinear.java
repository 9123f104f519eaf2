package org.peft4j.parallel;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import org.peft4j.core.parallel.AxisSharding;
import org.peft4j.core.parallel.Sharding;
import org.peft4j.lora.LoRALinear;

/**
 * LoRA on a {@link RowParallelLinear}: {@code A} is split by columns with {@code W}, {@code B} is
 * whole and identical on every rank. Because {@code B} is the same everywhere, {@code sum_k (x_k
 * A_k^T) B^T = (x A^T) B^T}, so the branch joins the base product before the layer's single
 * all-reduce:
 *
 * <pre>
 *   y = sum_k [x_k W_k^T + s (x_k A_k^T) B^T] + b    A_k: [r, I/T]   B: [O, r]
 * </pre>
 *
 * <p>{@code A} is drawn whole, as one process draws it, and cut. Merging adds {@code s B A_k} to
 * {@code W_k}: columns {@code k} of {@code s B A}.
 */
public class RowParallelLoRALinear extends ParallelLoRALinear {

    private final Sharding columns;

    /**
     * Wraps a row-parallel layer; {@link RowParallelLinear#adapt} calls this, then {@link
     * #initializeAcrossGroup()}.
     *
     * @param builder the LoRA settings
     * @param base the layer to wrap
     */
    protected RowParallelLoRALinear(LoRALinear.Builder builder, RowParallelLinear base) {
        this(builder, base, new AxisSharding(base.getGroup(), 1));
    }

    private RowParallelLoRALinear(
            LoRALinear.Builder builder, RowParallelLinear base, Sharding columns) {
        super(builder, base.getOutFeatures(), base.getGroup(), columns, null);
        this.columns = columns;
    }

    /**
     * Builds the adapted layer of a row-parallel layer, its adapter created and {@code B}
     * broadcast if the layer's weight is set: a collective then, as {@link
     * #initializeAcrossGroup()} is.
     *
     * @param builder the LoRA settings
     * @param base the layer to wrap
     * @return the adapted layer
     */
    static RowParallelLoRALinear wrap(LoRALinear.Builder builder, RowParallelLinear base) {
        RowParallelLoRALinear layer = new RowParallelLoRALinear(builder, base);
        layer.initializeAcrossGroup();
        return layer;
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray x = inputs.singletonOrThrow();
        NDArray y = getGroup().allReduce(project(ps, x, false, training), training);
        Parameter bias = getBias();
        if (bias != null) {
            y = y.add(ps.getValue(bias, x.getDevice(), training));
        }
        return new NDList(y);
    }

    /** {@inheritDoc} */
    @Override
    public Sharding getSharding(Parameter parameter) {
        return parameter == getWeight() || isLoraA(parameter) ? columns : null;
    }
}
