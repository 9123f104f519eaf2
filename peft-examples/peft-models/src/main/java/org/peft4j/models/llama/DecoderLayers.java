package org.peft4j.models.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import org.peft4j.core.tree.ReplaceableBlock;
import org.peft4j.parallel.TensorParallel;

import java.util.ArrayList;
import java.util.List;

/**
 * The stack of decoder layers, children {@code 0 .. L-1}, as Hugging Face's {@code model.layers.N}.
 *
 * <p>Input: {@code (x, cos, sin, cos / sqrt(d), sin / sqrt(d), mask, pastKey_0, pastValue_0, ...)}
 * (the cache optional; the additive mask {@code null} when nothing is masked, a single token
 * without padding). Output: {@code (y, key_0, value_0, ...)}.
 */
public final class DecoderLayers extends ReplaceableBlock {

    private static final byte VERSION = 1;

    /** The inputs before the cache: x, cos, sin, scaled cos, scaled sin, mask. */
    static final int FIXED = 6;

    private final List<Slot<LlamaDecoderLayer>> layers = new ArrayList<>();

    /**
     * Creates the stack of a config.
     *
     * @param config the model's config
     * @param rotary the model's rotary embedding, shared by every layer
     * @param group the tensor-parallel group
     */
    public DecoderLayers(LlamaConfig config, RotaryEmbedding rotary, TensorParallel group) {
        super(VERSION);
        for (int i = 0; i < config.getNumHiddenLayers(); i++) {
            layers.add(
                    addSlot(
                            Integer.toString(i),
                            LlamaDecoderLayer.class,
                            new LlamaDecoderLayer(config, rotary, group)));
        }
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        boolean cached = inputs.size() > FIXED;
        if (cached && inputs.size() != FIXED + 2 * layers.size()) {
            throw new IllegalArgumentException(
                    "expected "
                            + 2 * layers.size()
                            + " past key/value arrays (a key and a value per layer), got "
                            + (inputs.size() - FIXED));
        }
        NDArray x = inputs.get(0);
        NDList output = new NDList(1 + 2 * layers.size());
        output.add(x);
        for (int i = 0; i < layers.size(); i++) {
            NDList layerInput = new NDList(FIXED + 2);
            layerInput.add(x);
            layerInput.addAll(inputs.subList(1, FIXED));
            if (cached) {
                layerInput.add(inputs.get(FIXED + 2 * i));
                layerInput.add(inputs.get(FIXED + 1 + 2 * i));
            }
            NDList layerOutput = layers.get(i).get().forward(ps, layerInput, training, params);
            x = layerOutput.get(0);
            output.add(layerOutput.get(1));
            output.add(layerOutput.get(2));
        }
        output.set(0, x);
        return output;
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... shapes) {
        for (Slot<LlamaDecoderLayer> layer : layers) {
            layer.get().initialize(manager, dataType, shapes[0]);
        }
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }
}
