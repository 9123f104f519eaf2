package org.peft4j.models.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import org.peft4j.core.tree.ReplaceableBlock;
import org.peft4j.parallel.BranchTape;
import org.peft4j.parallel.TensorParallel;

/**
 * One pre-norm decoder layer:
 *
 * <pre>
 *   h = x + self_attn(input_layernorm(x))
 *   y = h + mlp(post_attention_layernorm(h))
 * </pre>
 *
 * <p>Inputs and outputs as {@link LlamaAttention}'s: {@code (x, cos, sin, mask[, pastKey,
 * pastValue])} in, {@code (y, key, value)} out.
 */
public final class LlamaDecoderLayer extends ReplaceableBlock {

    private static final byte VERSION = 1;

    private final Slot<LlamaAttention> selfAttn;
    private final Slot<LlamaMLP> mlp;
    private final Slot<RMSNorm> inputNorm;
    private final Slot<RMSNorm> postAttentionNorm;

    /**
     * Creates a layer of a config.
     *
     * @param config the model's config
     * @param rotary the model's rotary embedding
     * @param group the tensor-parallel group
     */
    public LlamaDecoderLayer(LlamaConfig config, RotaryEmbedding rotary, TensorParallel group) {
        super(VERSION);
        selfAttn =
                addSlot(
                        "self_attn",
                        LlamaAttention.class,
                        new LlamaAttention(config, rotary, group));
        mlp = addSlot("mlp", LlamaMLP.class, new LlamaMLP(config, group));
        inputNorm =
                addSlot(
                        "input_layernorm",
                        RMSNorm.class,
                        new RMSNorm(config.getHiddenSize(), config.getRmsNormEps()));
        postAttentionNorm =
                addSlot(
                        "post_attention_layernorm",
                        RMSNorm.class,
                        new RMSNorm(config.getHiddenSize(), config.getRmsNormEps()));
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        BranchTape tape = BranchTape.from(params);
        NDArray x = inputs.get(0);
        // each residual branch reads a recorded copy of the stream when training in segments
        NDArray attentionIn = tape == null ? x : tape.enter(x);
        NDList attentionInputs = new NDList(inputs);
        attentionInputs.set(
                0, inputNorm.get().forward(ps, new NDList(attentionIn), training).head());
        NDList attention = selfAttn.get().forward(ps, attentionInputs, training);
        NDArray h =
                tape == null ? x.add(attention.get(0)) : tape.exit(attentionIn, attention.get(0));
        NDArray mlpIn = tape == null ? h : tape.enter(h);
        NDArray normed = postAttentionNorm.get().forward(ps, new NDList(mlpIn), training).head();
        NDArray update = mlp.get().forward(ps, new NDList(normed), training).head();
        NDArray y = tape == null ? h.add(update) : tape.exit(mlpIn, update);
        return new NDList(y, attention.get(1), attention.get(2));
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... shapes) {
        Shape x = shapes[0];
        selfAttn.get().initialize(manager, dataType, x);
        mlp.get().initialize(manager, dataType, x);
        inputNorm.get().initialize(manager, dataType, x);
        postAttentionNorm.get().initialize(manager, dataType, x);
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }
}
