package org.peft4j.prefix;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertClose;
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
        assertClose(expected, run(model, manager, new NDList(x)).head(), 1e-5);
        NDList explicit =
                new NDList(x, ids(0, 1, 2), manager.ones(new Shape(1, 3), DataType.INT64));
        assertClose(expected, run(model, manager, explicit).head(), 1e-5);
        try (AdapterScope off = model.disableAdapter()) {
            assertClose(
                    run(base, manager, new NDList(x)).head(),
                    run(model, manager, new NDList(x)).head(),
                    0);
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
        assertClose(twoD.get("0, 2:"), fourD.get("0, 2:"), 1e-5);
        assertClose(twoD.get(1), fourD.get(1), 1e-5);
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
        assertArrayEquals(b, a);
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
            assertArrayEquals(alone, batch.get(i), "row " + i);
        }
        // and the logits of the short row's tokens
        NDArray padded = manager.create(new long[] {0, 0, 0, 1, 2, 3}).reshape(1, 6);
        NDArray positions = manager.create(new long[] {0, 0, 0, 0, 1, 2}).reshape(1, 6);
        NDArray mask = manager.create(new long[] {0, 0, 0, 1, 1, 1}).reshape(1, 6);
        NDArray withPadding =
                run(model, manager, new NDList(padded, positions, mask)).head().get(":, 3:, :");
        NDArray without = run(model, manager, new NDList(ids(1, 2, 3))).head();
        assertClose(without, withPadding, 1e-5);
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
        before.forEach((path, values) -> assertArrayEquals(values, after.get(path), path));
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
