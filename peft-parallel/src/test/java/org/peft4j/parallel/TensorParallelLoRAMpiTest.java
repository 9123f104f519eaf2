package org.peft4j.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertAllClose;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;
import static org.peft4j.core.testing.ArrayAssertions.gamma;
import static org.peft4j.core.testing.ArrayAssertions.maxAbs;
import static org.peft4j.parallel.testing.ExactLayers.assertWithinGamma;

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
import org.peft4j.core.PeftModel;
import org.peft4j.core.io.NativeArrays;
import org.peft4j.core.io.SafetensorsReader;
import org.peft4j.core.parallel.AxisSharding;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.lora.LoRALinear;
import org.peft4j.lora.LoRAModel;
import org.peft4j.parallel.comm.MpiCommunicator;
import org.peft4j.parallel.testing.ExactLayers;
import org.peft4j.parallel.testing.RandomArrays;
import org.peft4j.parallel.testing.SharedDirectory;
import org.peft4j.parallel.testing.TinyMlp;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * LoRAModel on a tensor-parallel model on two ranks: layers become parallel LoRA layers, and
 * adapters round-trip through merged and sharded files, against the single-process model built in
 * the same process from the same weights. Outputs agree to float32 rounding ({@link #assertSame});
 * files and weights that are only cut and gathered agree bit for bit.
 */
@Tag("mpi")
class TensorParallelLoRAMpiTest {

    private static final long H = 8;
    private static final long F = 16;
    private static final int R = 4;

    /**
     * The sums behind one output of the LoRA MLP: up (H terms, the bias, the branch's H and R and
     * its addition), then down (F, the bias, F and R, the addition); merging adds B A to each
     * weight (R terms and the sum) and unmerging takes it off again.
     */
    private static final int TERMS = (int) (2 * H + R + 2) + (int) (2 * F + R + 2) + 4 * (R + 1);

    private final TensorParallel group = TensorParallel.of(MpiCommunicator.world());
    private NDManager manager;
    private NDArray[] weights;
    private NDArray x;

    @BeforeEach
    void open() {
        assertEquals(2, group.getDegree(), "run with mpirun -np 2");
        manager = NDManager.newBaseManager();
        weights = new NDArray[] {random(1, F, H), random(2, F), random(3, H, F), random(4, H)};
        x = random(5, 2, 3, H);
    }

    @AfterEach
    void close() {
        manager.close();
    }

    private NDArray random(long seed, long... shape) {
        return RandomArrays.gaussian(manager, seed, 0.3 /* outputs of order one */, shape);
    }

    private TinyMlp single() {
        return new TinyMlp(TensorParallel.single(), manager, weights);
    }

    private TinyMlp parallel() {
        return new TinyMlp(group, manager, weights);
    }

    private static LoRAConfig config() {
        return LoRAConfig.builder().setTargetModules("up", "down").optR(R).optLoraAlpha(8).build();
    }

    /** The single-process LoRA model with nonzero A and B drawn from a seeded Java Random. */
    private LoRAModel trainedSingle() {
        LoRAModel model = new LoRAModel(single(), config());
        long seed = 10;
        for (LoRALinear layer : model.getLoRALayers().values()) {
            NDArray a = layer.getLoraA().getArray();
            NDArray b = layer.getLoraB().getArray();
            NativeArrays.copyInto(a, random(seed++, a.getShape().getShape()));
            NativeArrays.copyInto(b, random(seed++, b.getShape().getShape()));
        }
        return model;
    }

    private NDArray forward(Block model) {
        return model.forward(new ParameterStore(manager, false), new NDList(x), false).head();
    }

    /**
     * Asserts that two outputs of the MLP agree to {@code gamma_n} of the largest output (the
     * weights are scaled for outputs of order one, so the terms summed are of that size).
     */
    private static void assertSame(NDArray expected, NDArray actual, String what) {
        double atol = gamma(TERMS) * maxAbs(expected);
        assertAllClose(expected, actual, 0, atol, what + ", within gamma_n max |y|");
    }

    @Test
    void parallelBaseLayersBecomeParallelLoRALayersAndTheDegreeIsCorrected() {
        LoRAModel model = new LoRAModel(parallel(), config());
        assertInstanceOf(ColumnParallelLoRALinear.class, model.getLoRALayers().get("up"));
        assertInstanceOf(RowParallelLoRALinear.class, model.getLoRALayers().get("down"));
        assertEquals(2, model.getPeftConfig().getTensorParallelDegree());
        // B starts at zero: the adapted parallel model computes the single-process base model
        assertSame(forward(single()), forward(model), "the adapted parallel model, B = 0");
    }

    @Test
    void singleProcessAdapterLoadsIntoTheParallelModelAndSavesBackMerged() throws Exception {
        LoRAModel reference = trainedSingle();
        NDArray expected = forward(reference);
        try (SharedDirectory dir = SharedDirectory.create(group.getCommunicator(), manager)) {
            Path saved = saveOnRankZero(reference, dir.path().resolve("single"));
            LoRAModel parallel = LoRAModel.fromPretrained(parallel(), saved);
            assertSame(expected, forward(parallel), "the single-process adapter on two ranks");

            Path merged = dir.path().resolve("merged");
            parallel.savePretrained(merged);
            assertSameTensors(saved, merged);
            // PaddleNLP's field, in PaddleNLP's file: a merged save is a single-process adapter
            assertTrue(
                    Files.readString(merged.resolve("lora_config.json"))
                            .contains("\"tensor_parallel_degree\" : 1"));
            assertSame(
                    expected,
                    forward(LoRAModel.fromPretrained(single(), merged)),
                    "the merged adapter in one process");
        }
    }

    @Test
    void shardedAdapterRoundTripsAtTheSameDegreeOnly() throws Exception {
        LoRAModel reference = trainedSingle();
        NDArray expected = forward(reference);
        try (SharedDirectory dir = SharedDirectory.create(group.getCommunicator(), manager)) {
            Path saved = saveOnRankZero(reference, dir.path().resolve("single"));
            LoRAModel parallel = LoRAModel.fromPretrained(parallel(), saved);

            Path sharded = dir.path().resolve("sharded");
            parallel.savePretrained(sharded, false);
            assertTrue(
                    Files.isRegularFile(sharded.resolve("adapter_model.tp00-of-02.safetensors")));
            assertTrue(
                    Files.isRegularFile(sharded.resolve("adapter_model.tp01-of-02.safetensors")));
            assertFalse(Files.exists(sharded.resolve(PeftModel.WEIGHTS_FILE)));
            try (SafetensorsReader mine =
                    SafetensorsReader.open(
                            sharded.resolve(
                                    String.format(
                                            "adapter_model.tp%02d-of-02.safetensors",
                                            group.getRank())))) {
                assertEquals(
                        new Shape(F / 2, 4),
                        mine.getTensors().get("base_model.model.up.lora_B.weight").shape());
                assertEquals(
                        new Shape(4, F / 2),
                        mine.getTensors().get("base_model.model.down.lora_A.weight").shape());
            }
            assertSame(
                    expected,
                    forward(LoRAModel.fromPretrained(parallel(), sharded)),
                    "the sharded adapter on two ranks");

            TinyMlp plain = single();
            IllegalArgumentException refused =
                    assertThrows(
                            IllegalArgumentException.class,
                            () -> LoRAModel.fromPretrained(plain, sharded));
            assertTrue(
                    refused.getMessage().contains("tensor_parallel_degree [2]"),
                    refused.getMessage());
            assertTrue(refused.getMessage().contains("save it merged"), refused.getMessage());
            assertSameParameters(single(), plain, "the refused load left the model as it was");

            Path otherDegree = dir.path().resolve("degree4");
            if (group.getRank() == 0) {
                Files.createDirectories(otherDegree);
                Files.copy(
                        sharded.resolve("adapter_config.json"),
                        otherDegree.resolve("adapter_config.json"));
                for (int rank = 0; rank < 4; rank++) {
                    Files.copy(
                            sharded.resolve("adapter_model.tp00-of-02.safetensors"),
                            otherDegree.resolve(
                                    String.format("adapter_model.tp%02d-of-04.safetensors", rank)));
                }
            }
            group.getCommunicator().barrier();
            refused =
                    assertThrows(
                            IllegalArgumentException.class,
                            () -> LoRAModel.fromPretrained(parallel(), otherDegree));
            assertTrue(refused.getMessage().contains("[4]"), refused.getMessage());
            assertTrue(refused.getMessage().contains("model's degree is 2"), refused.getMessage());
        }
    }

    @Test
    void mergingEveryShardIsMergingTheFullModel() throws Exception {
        LoRAModel reference = trainedSingle();
        NDArray expected = forward(reference);
        try (SharedDirectory dir = SharedDirectory.create(group.getCommunicator(), manager)) {
            Path saved = saveOnRankZero(reference, dir.path().resolve("single"));
            LoRAModel parallel = LoRAModel.fromPretrained(parallel(), saved);
            reference.merge();
            parallel.merge();
            Map<String, LoRALinear> full = reference.getLoRALayers();
            Map<String, LoRALinear> parts = parallel.getLoRALayers();
            // W + s B A of the whole layer, in float64, cut as each rank's shard is
            String[] names = {"up", "down"};
            NDArray[] base = {weights[0], weights[2]};
            for (int i = 0; i < 2; i++) {
                LoRALinear layer = full.get(names[i]);
                NDArray[] exact =
                        ExactLayers.merged(
                                base[i],
                                layer.getLoraA().getArray(),
                                layer.getLoraB().getArray(),
                                layer.getScaling());
                AxisSharding shard = new AxisSharding(group, i == 0 ? 0 : 1);
                assertWithinGamma(
                        new NDArray[] {shard.localPart(exact[0]), shard.localPart(exact[1])},
                        parts.get(names[i]).getWeight().getArray(),
                        R + 1,
                        "this rank's part of the merged " + names[i]);
            }
            assertSame(expected, forward(parallel), "merged on every rank");
            parallel.unmerge();
            assertSame(expected, forward(parallel), "merged, then unmerged");
        }
    }

    private Path saveOnRankZero(LoRAModel model, Path dir) throws java.io.IOException {
        if (group.getRank() == 0) {
            model.savePretrained(dir);
        }
        group.getCommunicator().barrier();
        return dir;
    }

    /** Asserts that two models have the same parameters, by name, bit for bit. */
    private static void assertSameParameters(Block expected, Block actual, String guarantee) {
        ai.djl.util.PairList<String, ai.djl.nn.Parameter> a = expected.getParameters();
        ai.djl.util.PairList<String, ai.djl.nn.Parameter> b = actual.getParameters();
        assertEquals(a.keys(), b.keys(), guarantee + ": parameter names");
        for (int i = 0; i < a.size(); i++) {
            assertSameBits(
                    a.get(i).getValue().getArray(),
                    b.get(i).getValue().getArray(),
                    guarantee + ": " + a.get(i).getKey());
        }
    }

    private void assertSameTensors(Path expectedDir, Path actualDir) throws Exception {
        try (SafetensorsReader expected =
                        SafetensorsReader.open(expectedDir.resolve(PeftModel.WEIGHTS_FILE));
                SafetensorsReader actual =
                        SafetensorsReader.open(actualDir.resolve(PeftModel.WEIGHTS_FILE))) {
            assertEquals(expected.getTensors().keySet(), actual.getTensors().keySet());
            for (String key : expected.getTensors().keySet()) {
                assertSameBits(
                        expected.read(key, manager),
                        actual.read(key, manager),
                        key + ": the merged save gathers the parts that loading cut, copies");
            }
        }
    }
}
