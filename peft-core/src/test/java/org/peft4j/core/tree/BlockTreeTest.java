package org.peft4j.core.tree;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertRoundingClose;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.ParallelBlock;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.nn.transformer.TransformerEncoderBlock;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

class BlockTreeTest {

    private static NDManager manager;

    @BeforeAll
    static void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    private static SequentialBlock mlp() {
        return new SequentialBlock()
                .add(Linear.builder().setUnits(8).build())
                .add(Activation.reluBlock())
                .add(Linear.builder().setUnits(3).build());
    }

    private static float[] run(Block block, NDArray x) {
        return block.forward(new ParameterStore(manager, false), new NDList(x), false)
                .singletonOrThrow()
                .toFloatArray();
    }

    @Test
    void sequentialChildrenAreNamedByPosition() {
        SequentialBlock outer =
                new SequentialBlock()
                        .add(mlp())
                        .add(new ParallelBlock(list -> list.get(0), List.of(mlp(), mlp())));
        outer.initialize(manager, DataType.FLOAT32, new Shape(2, 4));
        Map<String, Block> blocks = BlockPaths.blocks(outer);
        assertEquals(
                List.of(
                        "", "0", "0.0", "0.1", "0.2", "1", "1.0", "1.0.0", "1.0.1", "1.0.2", "1.1",
                        "1.1.0", "1.1.1", "1.1.2"),
                List.copyOf(blocks.keySet()));
        assertTrue(BlockPaths.parameters(outer).containsKey("1.1.2.bias"));
        assertEquals(12, BlockPaths.parameters(outer).size(), "3 MLPs x 2 Linear x (weight, bias)");
    }

    @Test
    void namedChildrenLoseDjlsPositionPrefix() {
        TransformerEncoderBlock encoder =
                new TransformerEncoderBlock(8, 2, 16, 0f, Activation::relu);
        encoder.initialize(manager, DataType.FLOAT32, new Shape(2, 5, 8));
        Map<String, Block> blocks = BlockPaths.blocks(encoder);
        for (String path :
                List.of(
                        "selfAttention.keyProjection",
                        "selfAttention.queryProjection",
                        "selfAttention.valueProjection",
                        "selfAttention.resultProjection",
                        "attentionNorm",
                        "outputBlock.0",
                        "outputBlock.2")) {
            assertTrue(blocks.containsKey(path), path + " in " + blocks.keySet());
        }
        assertTrue(
                BlockPaths.parameters(encoder).containsKey("selfAttention.keyProjection.weight"));
    }

    @Test
    void replacingInASequentialBlockChangesWhatItCalls() {
        SequentialBlock block = mlp();
        block.initialize(manager, DataType.FLOAT32, new Shape(2, 4));
        NDArray x = manager.randomNormal(new Shape(2, 4));
        float[] before = run(block, x);
        Linear old = (Linear) BlockPaths.blocks(block).get("2");
        SpyLinear spy = new SpyLinear(old, 3);
        assertSame(old, BlockReplacer.replace(block, "2", spy));
        // The spy runs the same layer on the same input, but a second pass is not bitwise
        // guaranteed (MKL may sum in another order for other buffers). Each output sums 4 then 8
        // products and a bias: two evaluations are apart by at most 2 gamma(14) of the terms'
        // magnitude, which for these random weights is below twice the largest output: 64 u of
        // it. A spy that dropped the layer's bias or weight would miss by far more.
        assertRoundingClose(before, run(block, x), 64, "the MLP through the spy");
        assertEquals(1, spy.calls);
        assertSame(spy, BlockPaths.blocks(block).get("2"));
    }

    @Test
    void replacingATypedFieldChangesWhatTheForwardPassCalls() {
        TransformerEncoderBlock encoder =
                new TransformerEncoderBlock(8, 2, 16, 0f, Activation::relu);
        encoder.initialize(manager, DataType.FLOAT32, new Shape(2, 5, 8));
        NDArray x = manager.randomNormal(new Shape(2, 5, 8));
        float[] before = run(encoder, x);
        String path = "selfAttention.keyProjection";
        Linear old = (Linear) BlockPaths.blocks(encoder).get(path);
        SpyLinear spy = new SpyLinear(old, 8);
        BlockReplacer.replace(encoder, path, spy);
        // as above, through attention: about 80 roundings along the deepest path (projections of
        // 8, scores over 4 and a softmax over 5 tokens, the context, the output projection, an
        // 8 -> 16 -> 8 feed-forward block, residuals and two layer norms, which keep the terms at
        // the outputs' size). Errors of either sign add up like a random walk, 4 sqrt(n) u being
        // 7 standard deviations of n independent roundings; two evaluations: 8 sqrt(80) = 72 u
        // of the largest output, rounded up to 128.
        assertRoundingClose(before, run(encoder, x), 128, "the encoder through the spy");
        assertEquals(1, spy.calls, "the attention block calls the replacement through its field");
        assertSame(spy, BlockPaths.blocks(encoder).get(path));
    }

    @Test
    void aFieldThatCannotHoldTheReplacementIsAnError() {
        TransformerEncoderBlock encoder =
                new TransformerEncoderBlock(8, 2, 16, 0f, Activation::relu);
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                BlockReplacer.replace(
                                        encoder,
                                        "selfAttention.keyProjection",
                                        Activation.reluBlock()));
        assertTrue(e.getMessage().contains("selfAttention.keyProjection"), e.getMessage());
        assertTrue(e.getMessage().contains("keyProjection is declared as"), e.getMessage());
        assertTrue(
                BlockPaths.blocks(encoder).get("selfAttention.keyProjection") instanceof Linear,
                "nothing was replaced");
    }

    /** Calls its child through the children list only, which the replacer cannot see. */
    static final class Opaque extends AbstractBlock {
        Opaque() {
            addChildBlock("inner", Linear.builder().setUnits(2).build());
        }

        @Override
        protected NDList forwardInternal(
                ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> p) {
            return children.valueAt(0).forward(ps, inputs, training, p);
        }

        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return children.valueAt(0).getOutputShapes(inputShapes);
        }
    }

    @Test
    void aParentWithoutAKnownCallPathIsAnError() {
        Opaque opaque = new Opaque();
        Linear inner = (Linear) BlockPaths.blocks(opaque).get("inner");
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> BlockReplacer.replace(opaque, "inner", new SpyLinear(inner, 2)));
        assertTrue(e.getMessage().contains("\"inner\""), e.getMessage());
        assertTrue(e.getMessage().contains("ChildReplaceable"), e.getMessage());
    }

    /** Replaces its own child when asked. */
    static final class Cooperative extends AbstractBlock implements ChildReplaceable {
        private Block inner;

        Cooperative() {
            inner = addChildBlock("inner", Linear.builder().setUnits(2).build());
        }

        @Override
        public void replaceChild(String segment, Block replacement) {
            assertEquals("inner", segment);
            children.values().set(0, replacement);
            inner = replacement;
        }

        @Override
        protected NDList forwardInternal(
                ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> p) {
            return inner.forward(ps, inputs, training, p);
        }

        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return inner.getOutputShapes(inputShapes);
        }
    }

    @Test
    void aChildReplaceableParentReplacesItsOwnChild() {
        Cooperative parent = new Cooperative();
        Linear inner = (Linear) BlockPaths.blocks(parent).get("inner");
        SpyLinear spy = new SpyLinear(inner, 2);
        BlockReplacer.replace(parent, "inner", spy);
        assertSame(spy, parent.inner);
        assertSame(spy, BlockPaths.blocks(parent).get("inner"));
    }

    @Test
    void unknownPathsAreErrors() {
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> BlockReplacer.replace(mlp(), "7", Activation.reluBlock()));
        assertTrue(e.getMessage().contains("\"7\""), e.getMessage());
    }

    @Test
    void targetModulesFollowTheSeedAndHuggingFace() {
        TargetModules regex = TargetModules.regex(".*q_proj.*");
        assertTrue(regex.matches("model.layers.0.self_attn.q_proj"));
        assertTrue(!regex.matches("model.layers.0.self_attn.k_proj"));
        TargetModules exact = TargetModules.regex("q_proj");
        assertTrue(!exact.matches("model.layers.0.self_attn.q_proj"), "a string is a full match");
        TargetModules names = TargetModules.list(List.of("q_proj", "mlp.up_proj"));
        assertTrue(names.matches("model.layers.0.self_attn.q_proj"));
        assertTrue(names.matches("q_proj"));
        assertTrue(names.matches("model.layers.1.mlp.up_proj"));
        assertTrue(!names.matches("model.layers.0.self_attn.xq_proj"), "suffix is dotted");
        TargetModules regexes = TargetModules.list(List.of(".*q_proj.*", ".*v_proj.*"));
        assertTrue(regexes.matches("model.layers.3.self_attn.v_proj"));
        assertTrue(!regexes.matches("model.layers.3.self_attn.o_proj"));
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> TargetModules.regex("(q_proj"));
        assertTrue(e.getMessage().contains("(q_proj"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> TargetModules.list(List.of()));
    }
}
