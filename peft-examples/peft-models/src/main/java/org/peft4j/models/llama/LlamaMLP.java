package org.peft4j.models.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import org.peft4j.core.tree.ReplaceableBlock;
import org.peft4j.parallel.TensorParallel;

/**
 * Llama's SwiGLU feed-forward block: {@code y = down(silu(gate(x)) * up(x))} with {@code gate, up:
 * H -> I} and {@code down: I -> H}. Children: {@code gate_proj}, {@code up_proj}, {@code
 * down_proj}.
 */
public final class LlamaMLP extends ReplaceableBlock {

    private static final byte VERSION = 1;

    private final Slot<Linear> gateProj;
    private final Slot<Linear> upProj;
    private final Slot<Linear> downProj;
    private final int intermediate;

    /**
     * Creates the MLP of a config; in a tensor-parallel group each rank holds {@code I / T} of the
     * inner features.
     *
     * @param config the model's config
     * @param group the tensor-parallel group
     */
    public LlamaMLP(LlamaConfig config, TensorParallel group) {
        super(VERSION);
        Projections projections = new Projections(group);
        int inner = config.getIntermediateSize();
        intermediate = projections.local(inner);
        boolean bias = config.isMlpBias();
        gateProj = addSlot("gate_proj", Linear.class, projections.column(inner, bias, false));
        upProj = addSlot("up_proj", Linear.class, projections.column(inner, bias, false));
        downProj =
                addSlot("down_proj", Linear.class, projections.row(config.getHiddenSize(), bias));
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDList x = new NDList(inputs.head());
        NDArray gate = gateProj.get().forward(ps, x, training).head();
        NDArray up = upProj.get().forward(ps, x, training).head();
        NDArray activated = gate.mul(Activation.sigmoid(gate)).mul(up);
        return downProj.get().forward(ps, new NDList(activated), training);
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... shapes) {
        Shape x = shapes[0];
        gateProj.get().initialize(manager, dataType, x);
        upProj.get().initialize(manager, dataType, x);
        downProj.get().initialize(manager, dataType, new Shape(x.get(0), x.get(1), intermediate));
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }
}
