package org.peft4j.models.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import org.peft4j.core.lm.CausalLanguageModel;
import org.peft4j.core.tree.ReplaceableBlock;
import org.peft4j.parallel.BranchTape;
import org.peft4j.parallel.TensorParallel;

/**
 * The Llama decoder without its output projection, Hugging Face's {@code LlamaModel}: children
 * {@code embed_tokens}, {@code layers}, {@code norm}.
 *
 * <p>Input: the causal-LM input ({@code inputIds[, positionIds, attentionMask[, past...]]}).
 * Output: {@code (hidden [B, T, H] after the final norm, key_0, value_0, ...)}.
 *
 * <p>The cached and new tokens together may not exceed {@code max_position_embeddings}: the rotary
 * table ends there, and a longer input is refused rather than run on positions the model was never
 * trained on.
 */
public final class LlamaModel extends ReplaceableBlock {

    private static final byte VERSION = 1;

    private final Slot<TokenEmbedding> embedTokens;
    private final Slot<DecoderLayers> layers;
    private final Slot<RMSNorm> norm;
    private final RotaryEmbedding rotary;
    private final int hidden;
    private final int maxPositions;
    private final int slidingWindow;

    /**
     * Creates the decoder of a config.
     *
     * @param config the model's config
     * @param group the tensor-parallel group
     */
    public LlamaModel(LlamaConfig config, TensorParallel group) {
        super(VERSION);
        hidden = config.getHiddenSize();
        maxPositions = config.getMaxPositionEmbeddings();
        slidingWindow = config.getSlidingWindow();
        embedTokens =
                addSlot(
                        "embed_tokens",
                        TokenEmbedding.class,
                        new TokenEmbedding(config.getVocabSize(), hidden));
        rotary =
                new RotaryEmbedding(
                        config.getHeadDim(),
                        config.getRopeTheta(),
                        config.getRopeScaling(),
                        maxPositions);
        layers = addSlot("layers", DecoderLayers.class, new DecoderLayers(config, rotary, group));
        norm = addSlot("norm", RMSNorm.class, new RMSNorm(hidden, config.getRmsNormEps()));
    }

    /**
     * Returns the token embedding, whose weight a tied model also uses as output projection.
     *
     * @return the embedding block
     */
    public TokenEmbedding getEmbedTokens() {
        return embedTokens.get();
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray ids = inputs.get(0);
        long batch = ids.getShape().get(0);
        long length = ids.getShape().get(1);
        long past = inputs.size() > 3 ? inputs.get(3).getShape().get(2) : 0;
        CausalLanguageModel.requireWithinContext(
                past,
                length,
                maxPositions,
                () ->
                        "is longer than the model's max_position_embeddings, "
                                + maxPositions
                                + ": positions 0 to "
                                + (maxPositions - 1)
                                + " exist; shorten the input");
        NDArray positions =
                inputs.size() > 1
                        ? inputs.get(1)
                        : ids.getManager()
                                .arange(past, past + length, 1, DataType.INT64)
                                .reshape(1, length)
                                .repeat(0, batch);
        NDArray mask =
                AttentionMasks.additive(
                        inputs.size() > 2 ? inputs.get(2) : null, ids, past, slidingWindow);
        NDManager owner = embedTokens.get().getWeight().getArray().getManager();
        NDList cosSin = rotary.cosSin(positions, past + length, owner);
        BranchTape tape = BranchTape.from(params);
        NDArray x = embedTokens.get().forward(ps, new NDList(ids), training).head();
        NDList stackInput = new NDList(tape == null ? x : tape.stem(x));
        stackInput.addAll(cosSin);
        stackInput.add(mask);
        for (NDArray cache : inputs.subNDList(Math.min(3, inputs.size()))) {
            // a trained prefix is read by every layer: recorded once, its gradient gathered
            stackInput.add(tape == null ? cache : tape.share(cache));
        }
        NDList output = layers.get().forward(ps, stackInput, training, params);
        NDArray last = tape == null ? output.get(0) : tape.head(output.get(0));
        output.set(0, norm.get().forward(ps, new NDList(last), training).head());
        return output;
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... shapes) {
        Shape ids = shapes[0];
        Shape x = new Shape(ids.get(0), ids.get(1), hidden);
        embedTokens.get().initialize(manager, dataType, ids);
        layers.get().initialize(manager, dataType, x);
        norm.get().initialize(manager, dataType, x);
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        Shape ids = inputShapes[0];
        return new Shape[] {new Shape(ids.get(0), ids.get(1), hidden)};
    }
}
