package org.peft4j.prefix;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.peft4j.core.testing.ArrayAssertions.U;
import static org.peft4j.core.testing.ArrayAssertions.assertRoundingClose;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;
import static org.peft4j.core.testing.ArrayAssertions.floats;
import static org.peft4j.core.testing.ArrayAssertions.maxAbs;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.maxAbsDiff;

import ai.djl.Model;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.Trainer;
import ai.djl.training.loss.L2Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.peft4j.core.AdapterScope;
import org.peft4j.core.lm.CausalLMGenerator;
import org.peft4j.core.lm.GenerationConfig;
import org.peft4j.core.lm.TokenCrossEntropy;
import org.peft4j.core.testing.GreedyMargins;
import org.peft4j.core.tree.BlockPaths;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

class PrefixModelTest {

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    /**
     * How far two float32 evaluations of {@link TinyDecoder}'s logits may be apart, in units of
     * roundoff of the largest logit, when they compute the same math in other orders (a prefix
     * as a cache or as context, a 2-D or 4-D mask, padded or not, cached or recomputed, or only
     * other buffers: MKL picks its path by their alignment). Along the deepest path a logit takes
     * about 155 roundings: per layer the q, k and v projections (16 terms), the scores (4) and
     * their scale, the softmax (up to 7 exponentials, their sum and a division), the context (up
     * to 7), the output projection (16) and the residual, twice, then the output projection (16);
     * a prefix projection adds two small layers (about 30). Errors of either sign add up like a
     * random walk: 4 sqrt(n) u of the terms' magnitude is 7 standard deviations of n independent
     * roundings (see peft-models' LlamaRounding), the terms taken at the largest logit's size (no
     * norms, weights of 0.3); two evaluations, 8 sqrt(155) = 100, make 128.
     */
    static final double ROUNDING = 128;

    /** The logits of one row over a whole sequence, from one forward pass. */
    private float[] logits(Block model, int[] tokens) {
        long[] values = java.util.Arrays.stream(tokens).asLongStream().toArray();
        return floats(run(model, manager, new NDList(ids(values))).head());
    }

    /**
     * Asserts that greedy decoding of {@code tokens} is clear of rounding at every step, so that
     * two decodings that compute the logits in other orders must agree token for token.
     */
    private void assertClearGreedyPath(Block model, int[] tokens, int promptLength, String what) {
        float[] reference = logits(model, tokens);
        GreedyMargins.assertClearGreedyPath(
                reference,
                TinyDecoder.VOCAB,
                tokens,
                promptLength,
                ROUNDING * U * 2 * maxAbs(reference),
                what);
    }

    static PrefixConfig.Builder config(TinyDecoder model, int tokens) {
        return PrefixConfig.builder().fromModel(model).setNumPrefixTokens(tokens);
    }

    private NDArray ids(long... values) {
        return manager.create(values).reshape(1, values.length);
    }

    private static NDList run(Block block, NDManager manager, NDList input) {
        return block.forward(new ParameterStore(manager, false), input, false);
    }

    @Test
    void trainableCountsFollowTheFormulas() {
        TinyDecoder base = TinyDecoder.create(manager, 1);
        PrefixModelForCausalLM plain = new PrefixModelForCausalLM(base, config(base, 5).build());
        // P * 2 * L * kvHeads * headDim
        assertEquals(5 * 2 * 2 * 2 * 4, plain.countTrainableParameters());
        assertEquals(
                List.of("prefix_encoder.embedding.weight"),
                List.copyOf(plain.getTrainableParameters().keySet()));

        TinyDecoder other = TinyDecoder.create(manager, 1);
        PrefixModelForCausalLM projected =
                new PrefixModelForCausalLM(other, config(other, 5).optPrefixProjection(12).build());
        int width = 2 * 2 * 2 * 4;
        // embedding P * hidden, Linear hidden -> inner (+ bias), Linear inner -> width (+ bias)
        long expected = 5 * 16 + (16 * 12 + 12) + (12 * width + width);
        assertEquals(expected, projected.countTrainableParameters());
        long base0 =
                BlockPaths.parameters(other).values().stream()
                        .mapToLong(p -> p.getShape().size())
                        .sum();
        assertEquals(base0 + expected, projected.countAllParameters());
    }

    /** Writes a model's own cache of some context tokens into a prefix table. */
    private void setPrefixToCacheOf(
            PrefixModelForCausalLM model, TinyDecoder base, NDArray context) {
        NDList out = run(base, manager, new NDList(context));
        int tokens = (int) context.getShape().get(1);
        int kv = TinyDecoder.KV_HEADS;
        int d = TinyDecoder.HEAD_DIM;
        int layers2 = 2 * base.getNumHiddenLayers();
        float[] table = new float[tokens * layers2 * kv * d];
        for (int i = 0; i < layers2; i++) {
            float[] cache = out.get(1 + i).toFloatArray(); // [1, kv, P, d]
            for (int h = 0; h < kv; h++) {
                for (int p = 0; p < tokens; p++) {
                    for (int e = 0; e < d; e++) {
                        table[p * layers2 * kv * d + (i * kv + h) * d + e] =
                                cache[(h * tokens + p) * d + e];
                    }
                }
            }
        }
        NDArray target = model.getPrefixEncoder().getEmbedding().getArray();
        target.set(manager.create(table, target.getShape()).toFloatArray());
    }

    @Test
    void aPrefixHoldingTheCacheOfAContextActsAsThatContext() {
        TinyDecoder base = TinyDecoder.create(manager, 1);
        NDArray context = ids(3, 4, 5, 6);
        PrefixModelForCausalLM model = new PrefixModelForCausalLM(base, config(base, 4).build());
        setPrefixToCacheOf(model, base, context);
        NDArray x = ids(7, 8, 9);
        NDArray expected =
                run(base, manager, new NDList(ids(3, 4, 5, 6, 7, 8, 9))).head().get(":, 4:, :");
        assertRoundingClose(
                expected,
                run(model, manager, new NDList(x)).head(),
                ROUNDING,
                "the prefix against the context");
        NDList explicit =
                new NDList(x, ids(0, 1, 2), manager.ones(new Shape(1, 3), DataType.INT64));
        assertRoundingClose(
                expected,
                run(model, manager, explicit).head(),
                ROUNDING,
                "the prefix with explicit positions and mask against the context");
        try (AdapterScope off = model.disableAdapter()) {
            // the same math on the same weights: a second pass is not bitwise guaranteed (MKL's
            // path depends on the buffers), so to rounding
            assertRoundingClose(
                    run(base, manager, new NDList(x)).head(),
                    run(model, manager, new NDList(x)).head(),
                    ROUNDING,
                    "a disabled prefix against the base model");
        }
    }

    @Test
    void twoDimensionalAndFourDimensionalMasksGiveTheSameLogits() {
        TinyDecoder base = TinyDecoder.create(manager, 2);
        PrefixModelForCausalLM model = new PrefixModelForCausalLM(base, config(base, 3).build());
        NDArray ids = manager.create(new long[] {0, 0, 5, 6, 7, 8, 9, 10}, new Shape(2, 4));
        NDArray positions = manager.create(new long[] {0, 0, 0, 1, 0, 1, 2, 3}, new Shape(2, 4));
        NDArray mask = manager.create(new long[] {0, 0, 1, 1, 1, 1, 1, 1}, new Shape(2, 4));
        float[] additive = new float[2 * 4 * 4];
        for (int b = 0; b < 2; b++) {
            for (int i = 0; i < 4; i++) {
                for (int j = 0; j < 4; j++) {
                    boolean allowed = j <= i && (b == 1 || j >= 2);
                    additive[(b * 4 + i) * 4 + j] = allowed ? 0 : -1e9f;
                }
            }
        }
        NDArray twoD = run(model, manager, new NDList(ids, positions, mask)).head();
        NDArray fourD =
                run(
                                model,
                                manager,
                                new NDList(
                                        ids,
                                        positions,
                                        manager.create(additive, new Shape(2, 1, 4, 4))))
                        .head();
        assertRoundingClose(
                twoD.get("0, 2:"), fourD.get("0, 2:"), ROUNDING, "row 0's real tokens, 2-D vs 4-D");
        assertRoundingClose(twoD.get(1), fourD.get(1), ROUNDING, "row 1, 2-D vs 4-D");
    }

    @Test
    void cachedGenerationEqualsFullRecomputationWithThePrefix() {
        TinyDecoder base = TinyDecoder.create(manager, 3);
        PrefixModelForCausalLM model = new PrefixModelForCausalLM(base, config(base, 4).build());
        List<int[]> prompts = List.of(new int[] {1, 2, 3});
        GenerationConfig cached = GenerationConfig.builder().optMaxNewTokens(25).build();
        GenerationConfig full =
                GenerationConfig.builder().optMaxNewTokens(25).optUseCache(false).build();
        CausalLMGenerator generator = new CausalLMGenerator(model);
        int[] a = generator.generate(prompts, cached, manager).get(0);
        int[] b = generator.generate(prompts, full, manager).get(0);
        // exact equality of greedy tokens is sound where every step's margin is clear of the
        // logits' rounding (checked on the full recomputation's logits)
        assertClearGreedyPath(model, b, 3, "greedy with the prefix");
        assertArrayEquals(b, a, "cached and recomputed greedy tokens");
        int[] plain = new CausalLMGenerator(base).generate(prompts, cached, manager).get(0);
        assertTrue(!Arrays.equals(a, plain), "the prefix changes what is generated");
    }

    @Test
    void paddingInABatchDoesNotChangeARow() {
        TinyDecoder base = TinyDecoder.create(manager, 4);
        PrefixModelForCausalLM model = new PrefixModelForCausalLM(base, config(base, 4).build());
        List<int[]> prompts = List.of(new int[] {1, 2, 3}, new int[] {5, 6, 7, 8, 9, 10});
        GenerationConfig config = GenerationConfig.builder().optMaxNewTokens(20).build();
        CausalLMGenerator generator = new CausalLMGenerator(model);
        List<int[]> batch = generator.generate(prompts, config, manager);
        for (int i = 0; i < prompts.size(); i++) {
            int[] alone = generator.generate(List.of(prompts.get(i)), config, manager).get(0);
            assertClearGreedyPath(model, alone, prompts.get(i).length, "row " + i + " alone");
            assertArrayEquals(alone, batch.get(i), "row " + i);
        }
        // and the logits of the short row's tokens
        NDArray padded = manager.create(new long[] {0, 0, 0, 1, 2, 3}).reshape(1, 6);
        NDArray positions = manager.create(new long[] {0, 0, 0, 0, 1, 2}).reshape(1, 6);
        NDArray mask = manager.create(new long[] {0, 0, 0, 1, 1, 1}).reshape(1, 6);
        NDArray withPadding =
                run(model, manager, new NDList(padded, positions, mask)).head().get(":, 3:, :");
        NDArray without = run(model, manager, new NDList(ids(1, 2, 3))).head();
        assertRoundingClose(without, withPadding, ROUNDING, "a left-padded row against it alone");
    }

    @Test
    void onlyThePrefixTrainsAndTheBaseStaysBitForBit() {
        TinyDecoder base = TinyDecoder.create(manager, 5);
        Map<String, float[]> before = snapshot(base);
        PrefixModelForCausalLM model =
                new PrefixModelForCausalLM(base, config(base, 4).optPrefixProjection(8).build());
        Map<String, float[]> prefixBefore = snapshot(model.getPrefixEncoder());
        NDArray x = manager.create(new long[] {1, 2, 3, 4, 5, 6, 7, 8}).reshape(2, 4);
        float first = Float.NaN;
        float last = Float.NaN;
        try (Model holder = Model.newInstance("prefix")) {
            holder.setBlock(model);
            DefaultTrainingConfig training =
                    new DefaultTrainingConfig(new L2Loss())
                            .optOptimizer(
                                    Optimizer.adam()
                                            .optLearningRateTracker(Tracker.fixed(1e-2f))
                                            .build());
            try (Trainer trainer = holder.newTrainer(training)) {
                for (int step = 0; step < 30; step++) {
                    try (GradientCollector collector = trainer.newGradientCollector()) {
                        NDArray logits = trainer.forward(new NDList(x)).head();
                        NDArray loss = TokenCrossEntropy.loss(logits, x);
                        last = loss.getFloat();
                        first = step == 0 ? last : first;
                        collector.backward(loss);
                    }
                    trainer.step();
                }
            }
        }
        assertTrue(last < first, first + " -> " + last);
        Map<String, float[]> after = snapshot(base);
        before.forEach(
                (path, values) ->
                        assertSameBits(
                                values,
                                after.get(path),
                                path + ": a frozen base weight is never written"));
        Map<String, float[]> prefixAfter = snapshot(model.getPrefixEncoder());
        prefixBefore.forEach(
                (path, values) ->
                        assertTrue(
                                maxAbsDiff(values, prefixAfter.get(path)) > 1e-4, path + " moved"));
        for (Parameter p : base.getParameters().values()) {
            assertTrue(!p.requiresGradient());
        }
    }

    static Map<String, float[]> snapshot(Block block) {
        Map<String, float[]> values = new java.util.LinkedHashMap<>();
        BlockPaths.parameters(block)
                .forEach((path, p) -> values.put(path, p.getArray().toFloatArray()));
        return values;
    }

    @Test
    void invalidConfigsFailNamingTheField() {
        TinyDecoder base = TinyDecoder.create(manager, 1);
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> config(base, 0).build());
        assertTrue(e.getMessage().contains("num_prefix_tokens"), e.getMessage());
        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                PrefixConfig.builder()
                                        .setNumPrefixTokens(4)
                                        .setModelSizes(2, 3, 3, 16)
                                        .build());
        assertTrue(e.getMessage().contains("must divide hidden_size"), e.getMessage());
        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                PrefixConfig.builder()
                                        .setNumPrefixTokens(4)
                                        .setModelSizes(2, 4, 3, 16)
                                        .build());
        assertTrue(e.getMessage().contains("num_key_value_heads"), e.getMessage());
        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> config(base, 4).optPrefixDropout(1).build());
        assertTrue(e.getMessage().contains("prefix_dropout"), e.getMessage());
        TinyDecoder deeper = TinyDecoder.create(manager, 1, 3);
        PrefixConfig forBase = config(base, 4).build();
        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> new PrefixModelForCausalLM(deeper, forBase));
        assertTrue(
                e.getMessage().contains("num_hidden_layers is 2 in the config, 3 in the model"),
                e.getMessage());
    }
}
