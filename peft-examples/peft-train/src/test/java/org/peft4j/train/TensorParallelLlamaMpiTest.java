package org.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertAllClose;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;
import static org.peft4j.core.testing.ArrayAssertions.floats;
import static org.peft4j.core.testing.ArrayAssertions.gamma;
import static org.peft4j.core.testing.ArrayAssertions.maxAbs;
import static org.peft4j.core.testing.ArrayAssertions.maxAbsDiff;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.peft4j.core.PeftModel;
import org.peft4j.core.io.NativeArrays;
import org.peft4j.core.io.SafetensorsReader;
import org.peft4j.core.lm.CausalLMGenerator;
import org.peft4j.core.lm.GenerationConfig;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.core.tree.BlockPaths;
import org.peft4j.models.llama.ParityBounds;
import org.peft4j.models.llama.LlamaConfig;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.llama.ModelFamily;
import org.peft4j.models.llama.weights.LlamaCheckpoints;
import org.peft4j.train.AdamW;
import org.peft4j.train.TrainableModel;
import org.peft4j.train.TrainingStep;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.lora.LoRALinear;
import org.peft4j.lora.LoRAModel;
import org.peft4j.parallel.ColumnParallelLoRALinear;
import org.peft4j.parallel.RowParallelLoRALinear;
import org.peft4j.parallel.TensorParallel;
import org.peft4j.parallel.comm.MpiCommunicator;
import org.peft4j.parallel.testing.RandomArrays;
import org.peft4j.parallel.testing.SharedDirectory;
import org.peft4j.prefix.PrefixConfig;
import org.peft4j.prefix.PrefixModelForCausalLM;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The tensor-parallel Llama with LoRA on two ranks against the single-process model, which every
 * rank also loads, from the same files.
 *
 * <p>Logits are compared with a tolerance that follows float32 rounding over the whole array:
 * {@code gamma_n} of the largest logit, {@code n} the chain of sums behind one logit ({@link
 * ParityBounds}). A tolerance relative to each element would be wrong: a logit near zero comes from
 * terms as large as the others and keeps their absolute rounding error.
 */
@Tag("mpi")
class TensorParallelLlamaMpiTest {

    private final TensorParallel group = TensorParallel.of(MpiCommunicator.world());
    private NDManager manager;

    @BeforeEach
    void open() {
        assertEquals(2, group.getDegree(), "run with mpirun -np 2");
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void close() {
        manager.close();
    }

    /** The positions of {@link #ids}. */
    private static final int POSITIONS = 9;

    /** The LoRA rank of {@link #loraConfig}. */
    private static final int R = 4;

    private static LlamaConfig tiny(boolean tied) {
        return family(ModelFamily.LLAMA, tied);
    }

    /**
     * A tiny model of a family: Qwen2's q/k/v biases split with their rows, Qwen3's per-head norms
     * (of head_dim 12, independent of hidden / heads = 8) whole on every rank, Mistral's window of
     * 4 shorter than the 9 positions.
     */
    private static LlamaConfig family(ModelFamily family, boolean tied) {
        LlamaConfig.Builder b =
                LlamaConfig.builder()
                        .setSizes(32, 88, 2, 4, 2, 64)
                        .optTieWordEmbeddings(tied)
                        .optModelFamily(family);
        switch (family) {
            case QWEN3:
                return b.optHeadDim(12).build();
            case MISTRAL:
                return b.optSlidingWindow(4).build();
            default:
                return b.build();
        }
    }

    private static LoRAConfig loraConfig() {
        return LoRAConfig.builder()
                .setTargetModules(LlamaForCausalLM.PROJECTIONS)
                .optR(R)
                .optLoraAlpha(8)
                .build();
    }

    /** Writes a random model and a trained-looking adapter on rank 0; every rank gets the paths. */
    private Path[] randomCheckpoint(Path dir, boolean tied) throws IOException {
        return randomCheckpoint(dir, tiny(tied));
    }

    private Path[] randomCheckpoint(Path dir, LlamaConfig config) throws IOException {
        Path model = dir.resolve("model");
        Path adapter = dir.resolve("adapter");
        if (group.getRank() == 0) {
            LlamaForCausalLM llama = LlamaForCausalLM.random(config, manager, 7);
            // biases start at zero and norms at one: drawn ones show how each rank splits them
            long seed = 50;
            for (Map.Entry<String, Parameter> p : BlockPaths.parameters(llama).entrySet()) {
                NDArray array = p.getValue().getArray();
                long[] shape = array.getShape().getShape();
                if (p.getKey().endsWith(".bias")) {
                    NDArray drawn = RandomArrays.gaussian(manager, seed++, 0.1, shape);
                    NativeArrays.copyInto(array, drawn);
                } else if (p.getKey().endsWith("_norm.weight")) {
                    NDArray drawn = RandomArrays.gaussian(manager, seed++, 0.1, shape).add(1);
                    NativeArrays.copyInto(array, drawn);
                }
            }
            Files.createDirectories(model);
            LlamaCheckpoints.save(llama, model);
            LoRAModel lora = new LoRAModel(llama, loraConfig());
            randomizeAdapter(lora);
            lora.savePretrained(adapter);
        }
        group.getCommunicator().barrier();
        return new Path[] {model, adapter};
    }

    private void randomizeAdapter(LoRAModel lora) {
        long seed = 100;
        for (LoRALinear layer : lora.getLoRALayers().values()) {
            for (NDArray array :
                    List.of(layer.getLoraA().getArray(), layer.getLoraB().getArray())) {
                NativeArrays.copyInto(
                        array,
                        RandomArrays.gaussian(manager, seed++, 0.1, array.getShape().getShape()));
            }
        }
    }

    private NDArray ids(long vocab) {
        long[] values = new long[2 * POSITIONS];
        for (int i = 0; i < values.length; i++) {
            values[i] = 1 + (i * 37L) % (vocab - 1);
        }
        return manager.create(values, new Shape(2, POSITIONS));
    }

    private NDArray logits(Block model, NDArray ids) {
        return model.forward(new ParameterStore(manager, false), new NDList(ids), false).head();
    }

    /**
     * Asserts that logits agree to {@code gamma_n} of the largest expected logit, {@code n} the
     * chain of sums behind one, and returns the largest difference.
     */
    private static double assertSameLogits(
            NDArray expected, NDArray actual, int terms, String what) {
        double atol = gamma(terms) * maxAbs(expected);
        assertAllClose(
                expected, actual, 0, atol, what + ", within gamma_" + terms + " max |logit|");
        return maxAbsDiff(expected, actual);
    }

    private LoRAModel single(Path[] files) throws IOException {
        return LoRAModel.fromPretrained(
                LlamaForCausalLM.fromPretrained(files[0], manager), files[1]);
    }

    private LoRAModel parallel(Path model, Path adapter, boolean output) throws IOException {
        return LoRAModel.fromPretrained(
                LlamaForCausalLM.fromPretrained(model, manager, group, output), adapter);
    }

    @Test
    void everyFamilyGivesTheSingleProcessLogits() throws Exception {
        for (LlamaConfig config :
                List.of(
                        tiny(false),
                        tiny(true),
                        family(ModelFamily.QWEN2, true),
                        family(ModelFamily.QWEN3, true),
                        family(ModelFamily.MISTRAL, false))) {
            String what = config.getModelFamily() + " tied " + config.isTieWordEmbeddings();
            try (SharedDirectory dir = SharedDirectory.create(group.getCommunicator(), manager)) {
                Path[] files = randomCheckpoint(dir.path(), config);
                NDArray ids = ids(64);
                NDArray expected = logits(single(files), ids);
                LoRAModel parallel = parallel(files[0], files[1], false);
                assertInstanceOf(
                        ColumnParallelLoRALinear.class,
                        parallel.getLoRALayers().get("model.layers.0.self_attn.q_proj"));
                assertInstanceOf(
                        RowParallelLoRALinear.class,
                        parallel.getLoRALayers().get("model.layers.1.mlp.down_proj"));
                int terms = ParityBounds.forwardTerms(config, POSITIONS, R);
                double diff =
                        assertSameLogits(expected, logits(parallel, ids), terms, what + " logits");

                // each rank's part of the vocabulary when the logits are not gathered
                NDArray local = logits(parallel(files[0], files[1], true), ids);
                assertEquals(new Shape(2, POSITIONS, 32), local.getShape());
                NDArray mine =
                        expected.get("..., {}:{}", 32 * group.getRank(), 32 * group.getRank() + 32);
                assertAllClose(
                        mine,
                        local,
                        0,
                        gamma(terms) * maxAbs(expected),
                        what + ": this rank's part of the vocabulary");
                if (group.getRank() == 0) {
                    System.out.printf(
                            Locale.ROOT,
                            "PARITY tiny %s tensor-parallel logits: largest difference"
                                    + " %.1e, tolerance %.1e (|logit| up to %.3g)%n",
                            what,
                            diff,
                            gamma(terms) * maxAbs(expected),
                            maxAbs(expected));
                }
            }
        }
    }

    @Test
    void stories260KGivesTheSingleProcessLogitsAndTokens() throws Exception {
        Path model = Fixtures.root().resolve("stories260K");
        try (SharedDirectory dir = SharedDirectory.create(group.getCommunicator(), manager)) {
            Path adapter = dir.path().resolve("adapter");
            if (group.getRank() == 0) {
                LoRAModel lora =
                        new LoRAModel(
                                LlamaForCausalLM.fromPretrained(model, manager), loraConfig());
                randomizeAdapter(lora);
                lora.savePretrained(adapter);
            }
            group.getCommunicator().barrier();
            LoRAModel single = single(new Path[] {model, adapter});
            LoRAModel parallel = parallel(model, adapter, false);
            NDArray ids = ids(512);
            LlamaConfig stories = ((LlamaForCausalLM) single.getBaseModel()).getConfig();
            NDArray expected = logits(single, ids);
            NDArray actual = logits(parallel, ids);
            int terms = ParityBounds.forwardTerms(stories, POSITIONS, R);
            double diff = assertSameLogits(expected, actual, terms, "stories260K logits");

            GenerationConfig greedy = GenerationConfig.builder().optMaxNewTokens(20).build();
            int[] prompt = {1, 403, 407, 261, 378};
            int[] expectedTokens =
                    new CausalLMGenerator((LlamaForCausalLM) single.getBaseModel())
                            .generate(List.of(prompt), greedy, manager)
                            .get(0);
            int[] actualTokens =
                    new CausalLMGenerator((LlamaForCausalLM) parallel.getBaseModel())
                            .generate(List.of(prompt), greedy, manager)
                            .get(0);
            // Greedy decoding is a chain of argmaxes. Each run's logits, with the cache or
            // without, are within a = gamma_n max |logit| of the exact ones, so two runs pick the
            // same token wherever the leader is more than 4a ahead of the runner-up; the single
            // process's logits along its own path, recomputed whole, say how far ahead it was.
            long[] sequence = java.util.Arrays.stream(expectedTokens).asLongStream().toArray();
            NDArray path = logits(single, manager.create(sequence).expandDims(0));
            int generated = ParityBounds.forwardTerms(stories, expectedTokens.length, R);
            double a = gamma(generated) * maxAbs(path);
            double lead = smallestLead(path, prompt.length - 1, expectedTokens.length - 1);
            assertTrue(
                    lead > 4 * a,
                    "a near tie: the greedy choices lead by only " + lead + ", 4a = " + 4 * a);
            assertArrayEquals(
                    expectedTokens,
                    actualTokens,
                    "greedy tokens with the key/value cache: every choice led by " + lead);
            if (group.getRank() == 0) {
                System.out.printf(
                        Locale.ROOT,
                        "PARITY stories260K tensor-parallel logits: largest difference %.1e,"
                                + " tolerance %.1e (|logit| up to %.3g); greedy choices lead by"
                                + " at least %.2g (4a = %.1e)%n",
                        diff,
                        gamma(terms) * maxAbs(expected),
                        maxAbs(expected),
                        lead,
                        4 * a);
            }
        }
    }

    /**
     * Returns the smallest lead of the largest logit over the second largest, over positions {@code
     * [from, to)} of a batch of one.
     */
    private static double smallestLead(NDArray logits, int from, int to) {
        int vocab = (int) logits.getShape().get(2);
        float[] values = floats(logits);
        double smallest = Double.POSITIVE_INFINITY;
        for (int p = from; p < to; p++) {
            double first = Double.NEGATIVE_INFINITY;
            double second = Double.NEGATIVE_INFINITY;
            for (int v = 0; v < vocab; v++) {
                double z = values[p * vocab + v];
                if (z > first) {
                    second = first;
                    first = z;
                } else if (z > second) {
                    second = z;
                }
            }
            smallest = Math.min(smallest, first - second);
        }
        return smallest;
    }

    /** Asserts that two safetensors files hold the same tensors, bit for bit. */
    private void assertSameTensors(Path expected, Path actual, String guarantee)
            throws IOException {
        try (SafetensorsReader a = SafetensorsReader.open(expected);
                SafetensorsReader b = SafetensorsReader.open(actual)) {
            assertEquals(a.getTensors().keySet(), b.getTensors().keySet(), guarantee);
            for (String name : a.getTensors().keySet()) {
                assertSameBits(
                        a.read(name, manager), b.read(name, manager), guarantee + ", " + name);
            }
        }
    }

    @Test
    void adaptersRoundTripMergedAndSharded() throws Exception {
        try (SharedDirectory dir = SharedDirectory.create(group.getCommunicator(), manager)) {
            Path[] files = randomCheckpoint(dir.path(), false);
            NDArray ids = ids(64);
            NDArray expected = logits(single(files), ids);
            LoRAModel parallel = parallel(files[0], files[1], false);

            int terms = ParityBounds.forwardTerms(tiny(false), POSITIONS, R);

            Path merged = dir.path().resolve("merged");
            parallel.savePretrained(merged);
            assertSameTensors(
                    files[1].resolve(PeftModel.WEIGHTS_FILE),
                    merged.resolve(PeftModel.WEIGHTS_FILE),
                    "the merged save gathers the parts that loading cut from these tensors:"
                            + " copies");
            assertSameLogits(
                    expected,
                    logits(
                            LoRAModel.fromPretrained(
                                    LlamaForCausalLM.fromPretrained(files[0], manager), merged),
                            ids),
                    terms,
                    "the single-process model with the merged adapter");

            Path sharded = dir.path().resolve("sharded");
            parallel.savePretrained(sharded, false);
            assertTrue(Files.exists(sharded.resolve("adapter_model.tp01-of-02.safetensors")));
            assertSameLogits(
                    expected,
                    logits(parallel(files[0], sharded, false), ids),
                    terms,
                    "the parallel model with the sharded adapter");

            LlamaForCausalLM plain = LlamaForCausalLM.fromPretrained(files[0], manager);
            IllegalArgumentException refused =
                    assertThrows(
                            IllegalArgumentException.class,
                            () -> LoRAModel.fromPretrained(plain, sharded));
            assertTrue(refused.getMessage().contains("degree"), refused.getMessage());
        }
    }

    @Test
    void prefixesSplitByKeyValueHeadsRoundTrip() throws Exception {
        for (boolean projection : new boolean[] {false, true}) {
            try (SharedDirectory dir = SharedDirectory.create(group.getCommunicator(), manager)) {
                Path[] files = randomCheckpoint(dir.path(), false);
                Path saved = dir.path().resolve("prefix");
                if (group.getRank() == 0) {
                    LlamaForCausalLM llama = LlamaForCausalLM.fromPretrained(files[0], manager);
                    PrefixConfig.Builder config =
                            PrefixConfig.builder().fromModel(llama).setNumPrefixTokens(3);
                    if (projection) {
                        config.optPrefixProjection(16);
                    }
                    new PrefixModelForCausalLM(llama, config.build()).savePretrained(saved);
                }
                group.getCommunicator().barrier();
                NDArray ids = ids(64);
                NDArray expected =
                        logits(
                                PrefixModelForCausalLM.fromPretrained(
                                        LlamaForCausalLM.fromPretrained(files[0], manager), saved),
                                ids);
                PrefixModelForCausalLM parallel =
                        PrefixModelForCausalLM.fromPretrained(
                                LlamaForCausalLM.fromPretrained(files[0], manager, group, false),
                                saved);
                assertEquals(2, parallel.getPeftConfig().getTensorParallelDegree());
                // each rank's prefix holds its own key/value heads: [B, kv / T, P, d]
                assertEquals(
                        new Shape(1, 1, 3, 8),
                        parallel.prefixKeyValues(new ParameterStore(manager, false), ids, 1, false)
                                .get(0)
                                .getShape());
                // attention over 3 more positions, after the encoder's 32 to 16 to the keys
                int terms = ParityBounds.forwardTerms(tiny(false), POSITIONS + 3, 0) + 32 + 16;
                assertSameLogits(
                        expected,
                        logits(parallel, ids),
                        terms,
                        "projection " + projection + ": the parallel prefix model");

                Path merged = dir.path().resolve("merged");
                parallel.savePretrained(merged);
                assertSameTensors(
                        saved.resolve(PeftModel.WEIGHTS_FILE),
                        merged.resolve(PeftModel.WEIGHTS_FILE),
                        "projection "
                                + projection
                                + ": the merged save gathers the parts that loading cut: copies");
                if (projection) {
                    assertSameTensors(
                            saved.resolve("prefix_encoder.safetensors"),
                            merged.resolve("prefix_encoder.safetensors"),
                            "the merged encoder: one layer copied whole, one gathered from parts");
                }
                assertSameLogits(
                        expected,
                        logits(
                                PrefixModelForCausalLM.fromPretrained(
                                        LlamaForCausalLM.fromPretrained(files[0], manager), merged),
                                ids),
                        terms,
                        "projection " + projection + ": the merged prefix in one process");
                Path sharded = dir.path().resolve("sharded");
                parallel.savePretrained(sharded, false);
                assertTrue(Files.exists(sharded.resolve("adapter_model.tp01-of-02.safetensors")));
                assertSameLogits(
                        expected,
                        logits(
                                PrefixModelForCausalLM.fromPretrained(
                                        LlamaForCausalLM.fromPretrained(
                                                files[0], manager, group, false),
                                        sharded),
                                ids),
                        terms,
                        "projection " + projection + ": the sharded prefix on two ranks");
            }
        }
    }

    @Test
    void mergingEveryRankGivesTheMergedSingleProcessModel() throws Exception {
        try (SharedDirectory dir = SharedDirectory.create(group.getCommunicator(), manager)) {
            Path[] files = randomCheckpoint(dir.path(), false);
            NDArray ids = ids(64);
            LoRAModel single = single(files);
            LoRAModel parallel = parallel(files[0], files[1], false);
            single.merge();
            parallel.merge();
            NDArray expected = logits(single, ids);
            // merging adds B A (r terms and the sum) to each adapted weight of the chain, and
            // unmerging takes it off again: four adapted products a layer
            LlamaConfig config = tiny(false);
            int merge = config.getNumHiddenLayers() * 4 * (R + 1);
            int terms = ParityBounds.forwardTerms(config, POSITIONS, R) + merge;
            assertSameLogits(expected, logits(parallel, ids), terms, "merged on every rank");
            parallel.unmerge();
            assertSameLogits(
                    expected, logits(parallel, ids), terms + merge, "merged, then unmerged");
            IllegalStateException refused =
                    assertThrows(
                            IllegalStateException.class,
                            () ->
                                    LlamaCheckpoints.save(
                                            (LlamaForCausalLM) parallel.getBaseModel(),
                                            dir.path().resolve("no")));
            assertTrue(refused.getMessage().contains("single-process"), refused.getMessage());

            TrainableModel trainable = TrainableModel.of(parallel);
            try (AdamW optimizer =
                    new AdamW(trainable.trainableParameters(), 0.9, 0.999, 1e-8, 0)) {
                IllegalArgumentException training =
                        assertThrows(
                                IllegalArgumentException.class,
                                () -> new TrainingStep(trainable, optimizer, 1, manager, false));
                assertTrue(training.getMessage().contains("2 tensor-parallel ranks"));
            }
        }
    }
}
