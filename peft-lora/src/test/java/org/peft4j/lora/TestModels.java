package org.peft4j.lora;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.nn.transformer.TransformerEncoderBlock;
import ai.djl.training.ParameterStore;

import org.peft4j.core.io.NativeArrays;
import org.peft4j.core.tree.BlockPaths;

import java.util.LinkedHashMap;
import java.util.Map;

/** Small DJL models and helpers shared by the LoRA tests. */
final class TestModels {

    static final int IN = 8;
    static final int HIDDEN = 64;
    static final int OUT = 4;

    private TestModels() {}

    /** {@code 8 -> 64 -> relu -> 64 -> relu -> 4}, paths 0..4, initialised from a seed. */
    static SequentialBlock mlp(NDManager manager, int seed) {
        Engine.getInstance().setRandomSeed(seed);
        SequentialBlock block =
                new SequentialBlock()
                        .add(Linear.builder().setUnits(HIDDEN).build())
                        .add(Activation.reluBlock())
                        .add(Linear.builder().setUnits(HIDDEN).build())
                        .add(Activation.reluBlock())
                        .add(Linear.builder().setUnits(OUT).build());
        block.initialize(manager, DataType.FLOAT32, new Shape(1, IN));
        for (Parameter p : block.getParameters().values()) {
            if (p.getType() == Parameter.Type.BIAS) {
                p.getArray().addi(manager.randomNormal(0, 0.1f, p.getShape(), DataType.FLOAT32));
            }
        }
        return block;
    }

    /** DJL's transformer encoder layer, embedding 16, 2 heads, no dropout. */
    static TransformerEncoderBlock encoder(NDManager manager, int seed) {
        Engine.getInstance().setRandomSeed(seed);
        TransformerEncoderBlock block =
                new TransformerEncoderBlock(16, 2, 32, 0f, Activation::relu);
        block.initialize(manager, DataType.FLOAT32, new Shape(2, 5, 16));
        return block;
    }

    static NDArray forward(Block block, NDManager manager, NDArray x) {
        return block.forward(new ParameterStore(manager, false), new NDList(x), false)
                .singletonOrThrow();
    }

    static Map<String, float[]> snapshot(Block block) {
        Map<String, float[]> values = new LinkedHashMap<>();
        BlockPaths.parameters(block)
                .forEach((path, p) -> values.put(path, p.getArray().toFloatArray()));
        return values;
    }

    /** Copies every parameter value of {@code from} into the parameter at the same path. */
    static void copyParameters(Block from, Block to) {
        Map<String, Parameter> target = BlockPaths.parameters(to);
        BlockPaths.parameters(from)
                .forEach(
                        (path, p) ->
                                NativeArrays.copyInto(target.get(path).getArray(), p.getArray()));
    }
}
