package org.peft4j.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.U;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;
import static org.peft4j.core.testing.ArrayAssertions.assertWithin;
import static org.peft4j.core.testing.ArrayAssertions.gamma;

import ai.djl.Model;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.Trainer;
import ai.djl.training.loss.Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.AdapterScope;
import org.peft4j.core.PeftConfig;
import org.peft4j.core.PeftModel;
import org.peft4j.core.tree.BlockPaths;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Several named adapters on one {@link LoRAModel}, checked against a double-precision evaluation
 * of {@link TestModels#mlp}'s network written here from the math: each layer computes {@code h
 * W^T + b + sum_i s_i (h A_i^T) B_i^T} over the adapters that run on it.
 */
class NamedAdaptersTest {

    /**
     * Three layers, each a dot product of at most 64 terms plus r + 4 rounded operations: the
     * float32 result lies within this many unit roundoffs of the exact one, relative to the
     * output's magnitude (the errors of one layer pass through the next with weights of order 1).
     */
    private static final double ROUNDINGS = 3 * (2 * TestModels.HIDDEN + 8 + 4);

    @TempDir Path tmp;
    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    /** {@code default}: r 2, alpha 4 on every layer; {@code b}: r 3, alpha 6 on layers 2 and 4. */
    private LoRAModel twoAdapters(int seed) {
        LoRAModel model =
                new LoRAModel(
                        TestModels.mlp(manager, seed),
                        LoRAConfig.builder()
                                .setTargetModules("0", "2", "4")
                                .optR(2)
                                .optLoraAlpha(4)
                                .build());
        model.addAdapter(
                "b",
                LoRAConfig.builder()
                        .setTargetModules("2", "4")
                        .optR(3)
                        .optLoraAlpha(6)
                        .optInitLoraWeights(LoRAInit.GAUSSIAN)
                        .build());
        perturb(model, "default", seed);
        perturb(model, "b", seed + 100);
        return model;
    }

    /** Gives an adapter's B random values, so that it changes the output. */
    private void perturb(LoRAModel model, String name, int seed) {
        manager.getEngine().setRandomSeed(seed);
        for (LoRALinear layer : model.getLoRALayers(name).values()) {
            Parameter b = layer.getBranch(name).getLoraB();
            DataType type = b.getArray().getDataType();
            b.getArray().addi(manager.randomNormal(0, 0.3f, b.getShape(), type));
        }
    }

    private NDArray input(int rows, int seed) {
        manager.getEngine().setRandomSeed(seed);
        return manager.randomNormal(new Shape(rows, TestModels.IN));
    }

    private NDArray forward(Block block, NDArray x) {
        return block.forward(new ParameterStore(manager, false), new NDList(x), false)
                .singletonOrThrow();
    }

    /**
     * The network in double precision on the model's current parameters, with the branches of
     * the given adapters only (none: the base model). Merged weights must not be read here: every
     * call is made on an unmerged model.
     */
    private static double[] reference(LoRAModel model, float[] x, int rows, List<String> names) {
        Map<String, Parameter> params = BlockPaths.parameters(model.getBaseModel());
        double[] h = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            h[i] = x[i];
        }
        int[] widths = {TestModels.IN, TestModels.HIDDEN, TestModels.HIDDEN, TestModels.OUT};
        for (int l = 0; l < 3; l++) {
            String path = Integer.toString(2 * l);
            int in = widths[l];
            int out = widths[l + 1];
            float[] w = params.get(path + ".weight").getArray().toFloatArray();
            float[] b = params.get(path + ".bias").getArray().toFloatArray();
            double[] y = new double[rows * out];
            for (int i = 0; i < rows; i++) {
                for (int o = 0; o < out; o++) {
                    double sum = b[o];
                    for (int k = 0; k < in; k++) {
                        sum += h[i * in + k] * w[o * in + k];
                    }
                    y[i * out + o] = sum;
                }
            }
            LoRALinear layer = model.getLoRALayers().get(path);
            for (String name : names) {
                if (layer == null || !layer.getBranches().containsKey(name)) {
                    continue;
                }
                LoRABranch branch = layer.getBranch(name);
                int r = branch.getR();
                float[] a = branch.getLoraA().getArray().toFloatArray();
                float[] bb = branch.getLoraB().getArray().toFloatArray();
                for (int i = 0; i < rows; i++) {
                    double[] down = new double[r];
                    for (int j = 0; j < r; j++) {
                        for (int k = 0; k < in; k++) {
                            down[j] += a[j * in + k] * h[i * in + k];
                        }
                    }
                    for (int o = 0; o < out; o++) {
                        for (int j = 0; j < r; j++) {
                            y[i * out + o] += branch.getScaling() * bb[o * r + j] * down[j];
                        }
                    }
                }
            }
            if (l < 2) {
                for (int i = 0; i < y.length; i++) {
                    y[i] = Math.max(0, y[i]);
                }
            }
            h = y;
        }
        return h;
    }

    private static void assertMatches(double[] expected, NDArray actual, String what) {
        double max = 0;
        for (double v : expected) {
            max = Math.max(max, Math.abs(v));
        }
        double[] bound = new double[expected.length];
        for (int i = 0; i < bound.length; i++) {
            bound[i] = ROUNDINGS * U * (Math.abs(expected[i]) + max);
        }
        assertWithin(expected, actual.toFloatArray(), bound, what);
    }

    @Test
    void theActiveAdaptersBranchesAddAsTheMathSays() {
        LoRAModel model = twoAdapters(1);
        NDArray x = input(6, 7);
        float[] xs = x.toFloatArray();
        assertEquals(List.of("default", "b"), model.getAdapterNames());
        assertEquals(List.of("default"), model.getActiveAdapters());
        assertMatches(reference(model, xs, 6, List.of("default")), forward(model, x), "default");
        model.setAdapter("b");
        assertEquals(3, model.getPeftConfig().getR(), "getPeftConfig is the active adapter's");
        assertMatches(reference(model, xs, 6, List.of("b")), forward(model, x), "b");
        model.setAdapters("default", "b");
        double[] both = reference(model, xs, 6, List.of("default", "b"));
        assertMatches(both, forward(model, x), "default + b");
        try (AdapterScope base = model.disableAdapter()) {
            assertMatches(reference(model, xs, 6, List.of()), forward(model, x), "disabled");
        }
        // merging both and running merged gives the same, and unmerging gives W back
        Map<String, float[]> weights = TestModels.snapshot(model.getBaseModel());
        model.merge(true);
        assertTrue(model.isMerged());
        assertMatches(both, forward(model, x), "merged default + b");
        model.unmerge();
        assertFalse(model.isMerged());
        float[] w = weights.get("2.weight");
        float[] back = model.getLoRALayers().get("2").getWeight().getArray().toFloatArray();
        for (int i = 0; i < w.length; i++) {
            // two deltas added and subtracted: four roundings of |W| + |deltas| at most
            assertEquals(w[i], back[i], 8 * U * (Math.abs(w[i]) + 1), "2.weight[" + i + "]");
        }
    }

    @Test
    void mergeAndUnloadFoldsInTheNamedAdaptersOnly() {
        LoRAModel model = twoAdapters(2);
        NDArray x = input(4, 8);
        double[] onlyB = reference(model, x.toFloatArray(), 4, List.of("b"));
        Block plain = model.mergeAndUnload("b");
        for (Block block : BlockPaths.blocks(plain).values()) {
            assertFalse(block instanceof LoRALinear, "unloaded: plain Linear layers only");
        }
        assertMatches(onlyB, forward(plain, x), "b merged into the base model");
    }

    private Trainer trainer(Model holder, LoRAModel model) {
        holder.setBlock(model);
        Trainer trainer =
                holder.newTrainer(
                        new DefaultTrainingConfig(Loss.l2Loss())
                                .optOptimizer(
                                        Optimizer.adam()
                                                .optLearningRateTracker(Tracker.fixed(1e-2f))
                                                .build()));
        trainer.initialize(new Shape(8, TestModels.IN));
        return trainer;
    }

    @Test
    void trainingOneAdapterLeavesTheOthersAndTheBaseBitForBit() {
        LoRAModel model = twoAdapters(3);
        model.setAdapter("b");
        Map<String, Parameter> trainable = model.getTrainableParameters();
        assertEquals(
                model.adapterState("b").size(), trainable.size(), "only b's A and B train");
        Map<String, float[]> before = TestModels.snapshot(model.getBaseModel());
        NDArray x = input(8, 9);
        NDArray y = manager.randomNormal(new Shape(8, TestModels.OUT));
        try (Model holder = Model.newInstance("mlp");
                Trainer trainer = trainer(holder, model)) {
            for (int i = 0; i < 5; i++) {
                try (GradientCollector collector = trainer.newGradientCollector()) {
                    NDArray prediction = trainer.forward(new NDList(x)).singletonOrThrow();
                    collector.backward(
                            trainer.getLoss().evaluate(new NDList(y), new NDList(prediction)));
                }
                trainer.step();
            }
        }
        Map<String, float[]> after = TestModels.snapshot(model.getBaseModel());
        int moved = 0;
        for (Map.Entry<String, float[]> entry : before.entrySet()) {
            String path = entry.getKey();
            if (path.endsWith("lora_A.b") || path.endsWith("lora_B.b")) {
                assertNotEquals(
                        java.util.Arrays.toString(entry.getValue()),
                        java.util.Arrays.toString(after.get(path)),
                        path + " trains");
                moved++;
            } else {
                assertSameBits(entry.getValue(), after.get(path), path + " is frozen");
            }
        }
        assertEquals(4, moved, "b's A and B on layers 2 and 4");
    }

    @Test
    void savesDefaultAtTheRootAndOthersInSubfoldersAndRestoresTheSet() throws IOException {
        LoRAModel model = twoAdapters(4);
        Path dir = tmp.resolve("set");
        model.savePretrained(dir);
        assertTrue(Files.isRegularFile(dir.resolve(PeftConfig.CONFIG_FILE)));
        assertTrue(Files.isRegularFile(dir.resolve(PeftModel.WEIGHTS_FILE)));
        assertTrue(Files.isRegularFile(dir.resolve("b").resolve(PeftConfig.CONFIG_FILE)));
        assertTrue(Files.isRegularFile(dir.resolve("b").resolve(PeftModel.WEIGHTS_FILE)));
        // a training run's checkpoint beside the adapters is not an adapter of the set
        model.savePretrained(tmp.resolve("elsewhere"), List.of("b"));
        copyTree(tmp.resolve("elsewhere").resolve("b"), dir.resolve("checkpoint-3"));

        LoRAModel loaded = LoRAModel.fromPretrained(TestModels.mlp(manager, 4), dir);
        assertEquals(List.of("default", "b"), loaded.getAdapterNames());
        assertEquals(List.of("default"), loaded.getActiveAdapters());
        assertEquals(3, loaded.getPeftConfig("b").getR());
        assertEquals(6.0 / 3, loaded.getLoRALayers("b").get("2").getBranch("b").getScaling());
        for (String name : List.of("default", "b")) {
            Map<String, Parameter> saved = model.adapterState(name);
            Map<String, Parameter> read = loaded.adapterState(name);
            assertEquals(saved.keySet(), read.keySet(), name);
            saved.forEach(
                    (key, p) ->
                            assertSameBits(
                                    p.getArray().toFloatArray(),
                                    read.get(key).getArray().toFloatArray(),
                                    name + " " + key + " is read as written"));
        }

        // only b selected: the root keeps the adapter it had, b is rewritten
        perturb(model, "b", 44);
        model.savePretrained(dir, List.of("b"));
        LoRAModel again = LoRAModel.fromPretrained(TestModels.mlp(manager, 4), dir);
        assertSameBits(
                model.getLoRALayers().get("0").getBranch("default").getLoraA().getArray(),
                again.getLoRALayers().get("0").getBranch("default").getLoraA().getArray(),
                "the root's default adapter is kept");
        assertSameBits(
                model.getLoRALayers().get("4").getBranch("b").getLoraB().getArray(),
                again.getLoRALayers().get("4").getBranch("b").getLoraB().getArray(),
                "b is the new one");
        assertThrows(
                IllegalArgumentException.class, () -> model.savePretrained(dir, List.of("zz")));
    }

    @Test
    void aBrokenSubfolderFailsTheLoadByNameAndLeavesTheBaseModelPlain() throws IOException {
        LoRAModel model = twoAdapters(12);
        Path dir = tmp.resolve("set");
        model.savePretrained(dir);
        Path weights = dir.resolve("b").resolve(PeftModel.WEIGHTS_FILE);
        byte[] bytes = Files.readAllBytes(weights);
        Files.write(weights, java.util.Arrays.copyOf(bytes, bytes.length - 7));
        SequentialBlock base = TestModels.mlp(manager, 12);
        IOException e =
                assertThrows(IOException.class, () -> LoRAModel.fromPretrained(base, dir));
        assertTrue(e.getMessage().startsWith("the adapter \"b\" in "), e.getMessage());
        for (Block block : BlockPaths.blocks(base).values()) {
            assertFalse(block instanceof LoRALinear, "the base model is left unadapted");
        }
    }

    private static void copyTree(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        try (var files = Files.list(from)) {
            for (Path file : (Iterable<Path>) files::iterator) {
                Files.copy(file, to.resolve(file.getFileName()));
            }
        }
    }

    @Test
    void loadAdapterAddsASavedAdapterAndABadOneLeavesTheModelAsItWas() throws IOException {
        LoRAModel source = twoAdapters(5);
        Path dir = tmp.resolve("b");
        source.savePretrained(dir, List.of("b"));
        LoRAModel model =
                new LoRAModel(
                        TestModels.mlp(manager, 5),
                        LoRAConfig.builder().setTargetModules("0").optR(2).build());
        model.loadAdapter(dir.resolve("b"), "other");
        assertEquals(List.of("default", "other"), model.getAdapterNames());
        assertFalse(model.getLoRALayers("other").get("2").getBranch("other").getLoraB()
                .requiresGradient(), "a loaded adapter is frozen until set active");
        NDArray x = input(3, 10);
        model.setAdapter("other");
        assertMatches(
                reference(source, x.toFloatArray(), 3, List.of("b")),
                forward(model, x),
                "the loaded adapter computes what it computed where it was saved");

        // a truncated weights file: refused, and the model holds what it held
        Path broken = tmp.resolve("broken");
        copyTree(dir.resolve("b"), broken);
        byte[] bytes = Files.readAllBytes(broken.resolve(PeftModel.WEIGHTS_FILE));
        Files.write(
                broken.resolve(PeftModel.WEIGHTS_FILE),
                java.util.Arrays.copyOf(bytes, bytes.length / 2));
        Map<String, float[]> before = TestModels.snapshot(model.getBaseModel());
        assertThrows(IOException.class, () -> model.loadAdapter(broken, "third"));
        assertEquals(List.of("default", "other"), model.getAdapterNames());
        assertEquals(before.keySet(), TestModels.snapshot(model.getBaseModel()).keySet());
        assertThrows(IllegalArgumentException.class, () -> model.loadAdapter(dir.resolve("b"),
                "other"));
    }

    @Test
    void hotswapReplacesTheWeightsInPlaceAndRefusesOtherShapes() throws IOException {
        LoRAModel model = twoAdapters(6);
        Parameter a2 = model.getLoRALayers().get("2").getBranch("b").getLoraA();
        // another adapter of b's layers and rank, with another alpha
        LoRAModel other =
                new LoRAModel(
                        TestModels.mlp(manager, 6),
                        LoRAConfig.builder()
                                .setTargetModules("2", "4")
                                .optR(3)
                                .optLoraAlpha(12)
                                .build());
        perturb(other, "default", 61);
        Path swap = tmp.resolve("swap");
        other.savePretrained(swap);
        model.setAdapter("b");
        model.hotswapAdapter(swap, "b");
        assertSame(a2, model.getLoRALayers().get("2").getBranch("b").getLoraA(), "in place");
        assertEquals(12.0 / 3, model.getLoRALayers().get("2").getBranch("b").getScaling());
        NDArray x = input(4, 11);
        assertMatches(
                reference(other, x.toFloatArray(), 4, List.of("default")),
                forward(model, x),
                "b now computes the swapped-in adapter");

        Map<String, float[]> before = TestModels.snapshot(model.getBaseModel());
        LoRAModel otherRank =
                new LoRAModel(
                        TestModels.mlp(manager, 6),
                        LoRAConfig.builder().setTargetModules("2", "4").optR(4).build());
        otherRank.savePretrained(tmp.resolve("r4"));
        IllegalArgumentException rank =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> model.hotswapAdapter(tmp.resolve("r4"), "b"));
        assertTrue(rank.getMessage().contains("r is 4"), rank.getMessage());
        LoRAModel otherLayers =
                new LoRAModel(
                        TestModels.mlp(manager, 6),
                        LoRAConfig.builder().setTargetModules("0", "4").optR(3).build());
        otherLayers.savePretrained(tmp.resolve("layers"));
        IllegalArgumentException layers =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> model.hotswapAdapter(tmp.resolve("layers"), "b"));
        assertTrue(layers.getMessage().contains("[2]"), layers.getMessage());
        Map<String, float[]> after = TestModels.snapshot(model.getBaseModel());
        before.forEach((k, v) -> assertSameBits(v, after.get(k), k + ": a refused swap"));
    }

    @Test
    void aMixedBatchEqualsEachRowRunAloneWithItsAdapter() {
        // rows in any order (gathered), and sorted by adapter (sliced, nothing to reorder)
        List<String> scattered = List.of("b", LoRAModel.BASE_ADAPTER, "default", "b", "default");
        assertFalse(new AdapterRows(scattered).isGrouped());
        mixedBatchEqualsRowsAlone(scattered);
        List<String> sorted = List.of("b", "b", "default", LoRAModel.BASE_ADAPTER);
        assertTrue(new AdapterRows(sorted).isGrouped());
        mixedBatchEqualsRowsAlone(sorted);
        // layer 0 carries only default, which no row takes: one base product there
        mixedBatchEqualsRowsAlone(List.of("b", LoRAModel.BASE_ADAPTER, "b"));
    }

    private void mixedBatchEqualsRowsAlone(List<String> names) {
        LoRAModel model = twoAdapters(7);
        NDArray x = input(names.size(), 12);
        float[] xs = x.toFloatArray();
        NDArray mixed;
        try (AdapterScope rows = model.forAdapterRows(names)) {
            mixed = forward(model, x);
        }
        float[] out = mixed.toFloatArray();
        int width = TestModels.OUT;
        for (int i = 0; i < names.size(); i++) {
            String name = names.get(i);
            NDArray row = x.get(i + ":" + (i + 1));
            NDArray alone;
            if (name.equals(LoRAModel.BASE_ADAPTER)) {
                try (AdapterScope base = model.disableAdapter()) {
                    alone = forward(model, row);
                }
            } else {
                model.setAdapter(name);
                alone = forward(model, row);
            }
            float[] rowOut = java.util.Arrays.copyOfRange(out, i * width, (i + 1) * width);
            List<String> active = name.equals(LoRAModel.BASE_ADAPTER) ? List.of() : List.of(name);
            float[] rowX =
                    java.util.Arrays.copyOfRange(xs, i * TestModels.IN, (i + 1) * TestModels.IN);
            double[] expected = reference(model, rowX, 1, active);
            assertMatches(expected, manager.create(rowOut), "row " + i + " (" + name + ")");
            assertMatches(expected, alone, "row " + i + " alone");
        }
        model.setAdapter("default");
        assertMatches(
                reference(model, xs, names.size(), List.of("default")),
                forward(model, x),
                "after the scope the active adapter runs on every row again");
    }

    @Test
    void aMixedBatchRefusesWhatItCannotCompute() {
        LoRAModel model = twoAdapters(8);
        assertThrows(
                IllegalArgumentException.class, () -> model.forAdapterRows(List.of("b", "zz")));
        try (AdapterScope rows = model.forAdapterRows(List.of("b", "default"))) {
            IllegalStateException size =
                    assertThrows(IllegalStateException.class, () -> forward(model, input(3, 1)));
            assertTrue(size.getMessage().contains("2 rows"), size.getMessage());
            assertThrows(
                    IllegalStateException.class,
                    () ->
                            model.forward(
                                    new ParameterStore(manager, false),
                                    new NDList(input(2, 1)),
                                    true));
            assertThrows(IllegalStateException.class, () -> model.forAdapterRows(List.of("b")));
            // the rows' adapters stay as the scope found them
            model.setAdapter("default");
            assertThrows(IllegalStateException.class, () -> model.deleteAdapter("b"));
            assertThrows(
                    IllegalStateException.class,
                    () ->
                            model.addAdapter(
                                    "c", LoRAConfig.builder().setTargetModules("0").build()));
        }
        model.merge();
        assertThrows(IllegalStateException.class, () -> model.forAdapterRows(List.of("b")));
    }

    @Test
    void namesAndDeletionAreCheckedAndDeletingRestoresLayersNoAdapterTargets() {
        LoRAModel model =
                new LoRAModel(
                        TestModels.mlp(manager, 9),
                        LoRAConfig.builder().setTargetModules("0").optR(2).build());
        LoRAConfig last = LoRAConfig.builder().setTargetModules("4").optR(2).build();
        for (String bad : List.of("", "..", ".hidden", "a/b", "__base__", "checkpoint-7")) {
            assertThrows(IllegalArgumentException.class, () -> model.addAdapter(bad, last), bad);
        }
        assertThrows(IllegalArgumentException.class, () -> model.addAdapter("default", last));
        assertThrows(
                IllegalStateException.class,
                () ->
                        model.addAdapter(
                                "biased",
                                LoRAConfig.builder()
                                        .setTargetModules("4")
                                        .optTrainableBias(TrainableBias.ALL)
                                        .build()));
        assertEquals(List.of("default"), model.getAdapterNames(), "refusals change nothing");
        model.addAdapter("last", last);
        assertInstanceOf(LoRALinear.class, BlockPaths.blocks(model.getBaseModel()).get("4"));
        IllegalArgumentException unknown =
                assertThrows(IllegalArgumentException.class, () -> model.setAdapter("nope"));
        assertTrue(unknown.getMessage().contains("[default, last]"), unknown.getMessage());
        assertThrows(IllegalStateException.class, () -> model.deleteAdapter("default"));
        Parameter a = model.getLoRALayers("last").get("4").getBranch("last").getLoraA();
        model.deleteAdapter("last");
        assertEquals(List.of("default"), model.getAdapterNames());
        Block four = BlockPaths.blocks(model.getBaseModel()).get("4");
        assertFalse(four instanceof LoRALinear, "no adapter targets 4 any more");
        assertInstanceOf(Linear.class, four);
        assertFalse(a.isInitialized(), "the deleted adapter's arrays are freed");
        assertEquals(List.of("0"), new ArrayList<>(model.getLoRALayers().keySet()));
        NDArray x = input(2, 3);
        Map<String, Parameter> params = new LinkedHashMap<>(BlockPaths.parameters(four));
        assertEquals(Set.of("weight", "bias"), params.keySet());
        assertEquals(new Shape(2, TestModels.OUT), forward(model, x).getShape());
    }
}
