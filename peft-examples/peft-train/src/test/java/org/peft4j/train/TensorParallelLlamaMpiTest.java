package org.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertAllClose;
import static org.peft4j.core.testing.ArrayAssertions.assertClose;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.peft4j.core.io.NativeArrays;
import org.peft4j.core.lm.CausalLMGenerator;
import org.peft4j.core.lm.GenerationConfig;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.models.llama.LlamaConfig;
import org.peft4j.models.llama.LlamaForCausalLM;
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

/**
 * The tensor-parallel Llama with LoRA on two ranks against the single-process model, which every
 * rank also loads, from the same files.
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

    private static LlamaConfig tiny(boolean tied) {
        return LlamaConfig.builder()
                .setSizes(32, 88, 2, 4, 2, 64)
                .optTieWordEmbeddings(tied)
                .build();
    }

    private static LoRAConfig loraConfig() {
        return LoRAConfig.builder()
                .setTargetModules(LlamaForCausalLM.PROJECTIONS)
                .optR(4)
                .optLoraAlpha(8)
                .build();
    }

    /** Writes a random model and a trained-looking adapter on rank 0; every rank gets the paths. */
    private Path[] randomCheckpoint(Path dir, boolean tied) throws IOException {
        Path model = dir.resolve("model");
        Path adapter = dir.resolve("adapter");
        if (group.getRank() == 0) {
            LlamaForCausalLM llama = LlamaForCausalLM.random(tiny(tied), manager, 7);
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
        long[] values = new long[2 * 9];
        for (int i = 0; i < values.length; i++) {
            values[i] = 1 + (i * 37L) % (vocab - 1);
        }
        return manager.create(values, new Shape(2, 9));
    }

    private NDArray logits(Block model, NDArray ids) {
        return model.forward(new ParameterStore(manager, false), new NDList(ids), false).head();
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
    void randomTinyLlamaGivesTheSingleProcessLogits() throws Exception {
        for (boolean tied : new boolean[] {false, true}) {
            try (SharedDirectory dir = SharedDirectory.create(group.getCommunicator(), manager)) {
                Path[] files = randomCheckpoint(dir.path(), tied);
                NDArray ids = ids(64);
                NDArray expected = logits(single(files), ids);
                LoRAModel parallel = parallel(files[0], files[1], false);
                assertInstanceOf(
                        ColumnParallelLoRALinear.class,
                        parallel.getLoRALayers().get("model.layers.0.self_attn.q_proj"));
                assertInstanceOf(
                        RowParallelLoRALinear.class,
                        parallel.getLoRALayers().get("model.layers.1.mlp.down_proj"));
                assertClose(expected, logits(parallel, ids), 1e-5);

                // each rank's part of the vocabulary when the logits are not gathered
                NDArray local = logits(parallel(files[0], files[1], true), ids);
                assertEquals(new Shape(2, 9, 32), local.getShape());
                assertClose(
                        expected.get("..., {}:{}", 32 * group.getRank(), 32 * group.getRank() + 32),
                        local,
                        1e-5);
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
            // five layers of products summed in another order: float32 rounding, relative
            NDArray expected = logits(single, ids);
            NDArray actual = logits(parallel, ids);
            System.out.printf(
                    "stories260K tensor-parallel logits: largest difference %.3g (|logit| up to"
                            + " %.3g)%n",
                    expected.sub(actual).abs().max().getFloat(), expected.abs().max().getFloat());
            assertAllClose(expected, actual, 1e-5, 1e-5);

            GenerationConfig greedy = GenerationConfig.builder().optMaxNewTokens(20).build();
            List<int[]> prompts = List.of(new int[] {1, 403, 407, 261, 378});
            int[] expectedTokens =
                    new CausalLMGenerator((LlamaForCausalLM) single.getBaseModel())
                            .generate(prompts, greedy, manager)
                            .get(0);
            int[] actualTokens =
                    new CausalLMGenerator((LlamaForCausalLM) parallel.getBaseModel())
                            .generate(prompts, greedy, manager)
                            .get(0);
            assertArrayEquals(
                    expectedTokens, actualTokens, "greedy tokens with the key/value cache");
        }
    }

    @Test
    void adaptersRoundTripMergedAndSharded() throws Exception {
        try (SharedDirectory dir = SharedDirectory.create(group.getCommunicator(), manager)) {
            Path[] files = randomCheckpoint(dir.path(), false);
            NDArray ids = ids(64);
            NDArray expected = logits(single(files), ids);
            LoRAModel parallel = parallel(files[0], files[1], false);

            Path merged = dir.path().resolve("merged");
            parallel.savePretrained(merged);
            assertClose(
                    expected,
                    logits(
                            LoRAModel.fromPretrained(
                                    LlamaForCausalLM.fromPretrained(files[0], manager), merged),
                            ids),
                    1e-5);

            Path sharded = dir.path().resolve("sharded");
            parallel.savePretrained(sharded, false);
            assertTrue(Files.exists(sharded.resolve("adapter_model.tp01-of-02.safetensors")));
            assertClose(expected, logits(parallel(files[0], sharded, false), ids), 1e-5);

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
                assertClose(expected, logits(parallel, ids), 1e-5);

                Path merged = dir.path().resolve("merged");
                parallel.savePretrained(merged);
                assertClose(
                        expected,
                        logits(
                                PrefixModelForCausalLM.fromPretrained(
                                        LlamaForCausalLM.fromPretrained(files[0], manager), merged),
                                ids),
                        1e-5);
                Path sharded = dir.path().resolve("sharded");
                parallel.savePretrained(sharded, false);
                assertTrue(Files.exists(sharded.resolve("adapter_model.tp01-of-02.safetensors")));
                assertClose(
                        expected,
                        logits(
                                PrefixModelForCausalLM.fromPretrained(
                                        LlamaForCausalLM.fromPretrained(
                                                files[0], manager, group, false),
                                        sharded),
                                ids),
                        1e-5);
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
            assertClose(expected, logits(parallel, ids), 1e-5);
            parallel.unmerge();
            assertClose(expected, logits(parallel, ids), 1e-5);
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
