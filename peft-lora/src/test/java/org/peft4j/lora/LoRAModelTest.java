package org.peft4j.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.U;
import static org.peft4j.core.testing.ArrayAssertions.assertRoundingClose;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;
import static org.peft4j.core.testing.ArrayAssertions.assertWithin;
import static org.peft4j.core.testing.ArrayAssertions.gamma;
import static org.peft4j.core.testing.ArrayAssertions.maxAbsDiff;
import static org.peft4j.lora.TestModels.forward;

import ai.djl.Model;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.nn.transformer.TransformerEncoderBlock;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.GradientCollector;
import ai.djl.training.Trainer;
import ai.djl.training.loss.Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.peft4j.core.AdapterScope;
import org.peft4j.core.PeftModel;
import org.peft4j.core.tree.BlockPaths;

import java.util.List;
import java.util.Map;
import java.util.Set;

class LoRAModelTest {

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    private static LoRAConfig.Builder allLinear() {
        return LoRAConfig.builder().setTargetModules("0", "2", "4").optR(2).optLoraAlpha(4);
    }

    private NDArray input(int rows) {
        return manager.randomNormal(new Shape(rows, TestModels.IN));
    }

    /** Gives every B random values, so that the adapter changes the output. */
    private void perturb(LoRAModel model) {
        for (LoRALinear layer : model.getLoRALayers().values()) {
            layer.getLoraB().getArray().addi(manager.randomNormal(layer.getLoraB().getShape()));
        }
    }

    /**
     * The MLP's output in double precision, with or without the adapters, on the parameters of a
     * snapshot taken before any merge, and the bound of any float32 evaluation: unmerged, merged,
     * or through the effective weight (see {@link Reference}).
     */
    private static Reference.Expected reference(
            Map<String, float[]> params, NDArray x, boolean withAdapter) {
        return Reference.mlp(
                params, 4.0 / 2, x.toFloatArray(), (int) x.getShape().get(0), withAdapter, U);
    }

    /**
     * DJL's encoder layer, evaluated twice on the same weights and input, gives the same math
     * summed in possibly other orders (MKL picks its path by the buffers' alignment): about 140
     * roundings along the deepest path (projections of 16, scores over 8 and their scale, a
     * softmax over 5 tokens, the context, the output projection, the residual and a layer norm,
     * then a 16 -> 32 -> 16 feed-forward block, the residual and a layer norm). The layer norms
     * keep the terms at the outputs' size; errors of either sign add up like a random walk, 4
     * sqrt(n) u of that size being 7 standard deviations of n independent roundings: two
     * evaluations, 8 sqrt(140) = 95, make 128. A LoRA branch of B ~ N(0, 1) changes the outputs by
     * more than 1e-3.
     */
    private static final double ENCODER_ROUNDING = 128;

    @Test
    void adaptedModelStartsEqualToTheBaseOnDjlBlocks() {
        SequentialBlock mlp = TestModels.mlp(manager, 1);
        NDArray x = input(6);
        float[] base = forward(mlp, manager, x).toFloatArray();
        Reference.Expected plain = reference(TestModels.snapshot(mlp), x, false);
        assertWithin(plain.value, base, plain.bound, "the base MLP against double precision");
        LoRAModel model = new LoRAModel(mlp, allLinear().build());
        assertEquals(Set.of("0", "2", "4"), model.getLoRALayers().keySet());
        // B = 0: the adapted network's exact output is the base network's
        Reference.Expected withAdapter = reference(TestModels.snapshot(mlp), x, true);
        assertWithin(
                withAdapter.value,
                forward(model, manager, x).toFloatArray(),
                withAdapter.bound,
                "the adapted MLP, B = 0, against the base network in double precision");

        TransformerEncoderBlock encoder = TestModels.encoder(manager, 2);
        NDArray tokens = manager.randomNormal(new Shape(2, 5, 16));
        float[] encoded = forward(encoder, manager, tokens).toFloatArray();
        LoRAModel adapted =
                new LoRAModel(
                        encoder,
                        LoRAConfig.builder()
                                .setTargetModules(
                                        "keyProjection", "queryProjection", "valueProjection")
                                .build());
        assertEquals(
                List.of(
                        "selfAttention.keyProjection",
                        "selfAttention.queryProjection",
                        "selfAttention.valueProjection"),
                List.copyOf(adapted.getLoRALayers().keySet()));
        assertRoundingClose(
                encoded,
                forward(adapted, manager, tokens).toFloatArray(),
                ENCODER_ROUNDING,
                "the adapted encoder, B = 0, against the base encoder");
        perturb(adapted);
        assertTrue(
                maxAbsDiff(encoded, forward(adapted, manager, tokens).toFloatArray()) > 1e-3,
                "the encoder's typed fields call the LoRA layers");
        try (AdapterScope off = adapted.disableAdapter()) {
            assertRoundingClose(
                    encoded,
                    forward(adapted, manager, tokens).toFloatArray(),
                    ENCODER_ROUNDING,
                    "the disabled adapter against the base encoder");
        }
    }

    @Test
    void onlyTheAdapterTrainsAndTheCountsMatchTheHandComputation() {
        LoRAModel model = new LoRAModel(TestModels.mlp(manager, 1), allLinear().build());
        assertEquals(
                List.of("0.lora_A", "0.lora_B", "2.lora_A", "2.lora_B", "4.lora_A", "4.lora_B"),
                List.copyOf(model.getTrainableParameters().keySet()));
        // A: r * in per layer, B: out * r per layer, r = 2
        long trainable = 2 * (8 + 64 + 64) + 2 * (64 + 64 + 4);
        long base = (8 * 64 + 64) + (64 * 64 + 64) + (64 * 4 + 4);
        assertEquals(trainable, model.countTrainableParameters());
        assertEquals(base + trainable, model.countAllParameters());
        assertEquals(
                "trainable params: 536 || all params: 5,532 || trainable%: 9.6891",
                model.trainableParametersSummary());
    }

    @Test
    void biasAndTrainableModulesSettingsAddExactlyTheirParameters() {
        LoRAModel lora =
                new LoRAModel(
                        TestModels.mlp(manager, 1),
                        LoRAConfig.builder()
                                .setTargetModules("0", "2")
                                .optTrainableBias(TrainableBias.LORA)
                                .optTrainableModules(List.of("4\\.weight"))
                                .build());
        assertEquals(
                Set.of(
                        "0.lora_A",
                        "0.lora_B",
                        "2.lora_A",
                        "2.lora_B",
                        "0.bias",
                        "2.bias",
                        "4.weight"),
                lora.getTrainableParameters().keySet());
        LoRAModel all =
                new LoRAModel(
                        TestModels.mlp(manager, 1),
                        LoRAConfig.builder()
                                .setTargetModules("0")
                                .optTrainableBias(TrainableBias.ALL)
                                .build());
        assertEquals(
                Set.of("0.lora_A", "0.lora_B", "0.bias", "2.bias", "4.bias"),
                all.getTrainableParameters().keySet());
        assertEquals(
                all.getTrainableParameters().keySet(),
                all.adapterState().keySet().stream()
                        .map(
                                k ->
                                        k.replace(".lora_A.weight", ".lora_A")
                                                .replace(".lora_B.weight", ".lora_B"))
                        .collect(java.util.stream.Collectors.toSet()));
    }

    private Trainer trainer(Model holder, LoRAModel model, float learningRate) {
        holder.setBlock(model);
        Trainer trainer =
                holder.newTrainer(
                        new DefaultTrainingConfig(Loss.l2Loss())
                                .optOptimizer(
                                        Optimizer.adam()
                                                .optLearningRateTracker(Tracker.fixed(learningRate))
                                                .build()));
        trainer.initialize(new Shape(16, TestModels.IN));
        return trainer;
    }

    private static float step(Trainer trainer, NDArray x, NDArray y) {
        float value;
        try (GradientCollector collector = trainer.newGradientCollector()) {
            NDArray prediction = trainer.forward(new NDList(x)).singletonOrThrow();
            NDArray loss = trainer.getLoss().evaluate(new NDList(y), new NDList(prediction));
            value = loss.getFloat();
            collector.backward(loss);
        }
        trainer.step();
        return value;
    }

    @Test
    void twentyStepsMoveAAndBAndLeaveTheBaseBitForBit() {
        SequentialBlock mlp = TestModels.mlp(manager, 1);
        Map<String, float[]> before = TestModels.snapshot(mlp);
        LoRAModel model = new LoRAModel(mlp, allLinear().build());
        Map<String, float[]> adapterBefore = TestModels.snapshot(model.getBaseModel());
        NDArray x = input(16);
        NDArray y = manager.randomNormal(new Shape(16, TestModels.OUT));
        try (Model holder = Model.newInstance("mlp");
                Trainer trainer = trainer(holder, model, 1e-2f)) {
            for (int i = 0; i < 20; i++) {
                step(trainer, x, y);
            }
        }
        Map<String, float[]> after = TestModels.snapshot(model.getBaseModel());
        for (Map.Entry<String, float[]> entry : before.entrySet()) {
            assertSameBits(
                    entry.getValue(),
                    after.get(entry.getKey()),
                    entry.getKey() + ": a frozen base parameter is never written");
        }
        for (String path : model.getTrainableParameters().keySet()) {
            assertTrue(
                    maxAbsDiff(adapterBefore.get(path), after.get(path)) > 1e-3, path + " moved");
        }
    }

    @Test
    void loraTrainingHalvesAToyRegressionLossIn100Steps() {
        SequentialBlock teacher = TestModels.mlp(manager, 1);
        // the target: the same network with a rank-2 change of its first two layers
        for (String path : List.of("0.weight", "2.weight")) {
            Parameter w = BlockPaths.parameters(teacher).get(path);
            Shape shape = w.getShape();
            NDArray u = manager.randomNormal(new Shape(shape.get(0), 2));
            NDArray v = manager.randomNormal(new Shape(2, shape.get(1)));
            w.getArray().addi(u.matMul(v).muli(0.3f));
        }
        NDArray x = input(256);
        NDArray y = forward(teacher, manager, x);
        LoRAModel model =
                new LoRAModel(
                        TestModels.mlp(manager, 1), allLinear().optR(4).optLoraAlpha(8).build());
        float first;
        float last = Float.NaN;
        try (Model holder = Model.newInstance("toy");
                Trainer trainer = trainer(holder, model, 1e-2f)) {
            first = step(trainer, x, y);
            for (int i = 1; i < 100; i++) {
                last = step(trainer, x, y);
            }
        }
        assertTrue(last <= 0.5f * first, "loss " + first + " -> " + last);
    }

    @Test
    void mergeWeightsFollowsTheSeedsTrainAndEvalModes() {
        SequentialBlock mlp = TestModels.mlp(manager, 1);
        LoRAModel model = new LoRAModel(mlp, allLinear().optMergeWeights(true).build());
        perturb(model);
        NDArray x = input(5);
        Map<String, float[]> params = TestModels.snapshot(mlp);
        Reference.Expected expected = reference(params, x, true);
        float[] adapted = forward(model, manager, x).toFloatArray();
        assertWithin(expected.value, adapted, expected.bound, "unmerged");
        float[] w0 = params.get("0.weight");
        assertTrue(model.isTraining());
        assertFalse(model.isMerged());
        model.eval();
        assertTrue(model.isMerged());
        assertTrue(
                maxAbsDiff(w0, BlockPaths.parameters(mlp).get("0.weight").getArray().toFloatArray())
                        > 1e-4);
        assertWithin(
                expected.value,
                forward(model, manager, x).toFloatArray(),
                expected.bound,
                "merged");
        try (AdapterScope off = model.disableAdapter()) {
            assertFalse(model.isMerged(), "a disabled adapter is not merged");
        }
        assertTrue(model.isMerged(), "closing the scope restores the merge");
        model.train();
        assertFalse(model.isMerged());
        // merge and unmerge in two scopes and a train(): each layer's W went through fl(fl(W + d)
        // - d') twice at most, so it is back to within 2 (2 u (|W| + |d|) + 2 gamma(r + 1) |d|)
        for (String path : List.of("0", "2", "4")) {
            double[] delta = deltaMagnitude(params, path, 2, 4.0 / 2);
            float[] w = params.get(path + ".weight");
            double[] bound = new double[w.length];
            for (int i = 0; i < w.length; i++) {
                bound[i] = 2 * (2 * U * (Math.abs(w[i]) + delta[i]) + 2 * gamma(2 + 1) * delta[i]);
            }
            assertWithin(
                    Reference.toDouble(w),
                    BlockPaths.parameters(mlp).get(path + ".weight").getArray().toFloatArray(),
                    bound,
                    path + ": train() unmerges W to within rounding");
        }
        // W back to within its rounding adds at most the bound's order again
        assertWithin(
                expected.value,
                forward(model, manager, x).toFloatArray(),
                expected.bound(2),
                "unmerged again");

        LoRAModel plain = new LoRAModel(TestModels.mlp(manager, 1), allLinear().build());
        plain.eval();
        assertFalse(plain.isMerged(), "without merge_weights eval() leaves the weights alone");
    }

    /** {@code |s| |B| |A|} of a layer of a snapshot, {@code [out, in]}. */
    private static double[] deltaMagnitude(
            Map<String, float[]> params, String path, int r, double s) {
        float[] a = params.get(path + ".lora_A");
        float[] b = params.get(path + ".lora_B");
        int in = a.length / r;
        int out = b.length / r;
        double[] m = new double[out * in];
        for (int o = 0; o < out; o++) {
            for (int i = 0; i < in; i++) {
                for (int k = 0; k < r; k++) {
                    m[o * in + i] += Math.abs(s * b[o * r + k] * a[k * in + i]);
                }
            }
        }
        return m;
    }

    @Test
    void rsloraScalesTheBranchByAlphaOverSqrtR() {
        SequentialBlock mlp = TestModels.mlp(manager, 1);
        LoRAModel model =
                new LoRAModel(mlp, allLinear().optR(4).optLoraAlpha(8).optUseRslora(true).build());
        perturb(model);
        LoRALinear first = model.getLoRALayers().get("0");
        // exact: IEEE square roots are correctly rounded, sqrt(4) = 2, and 8 / 2 = 4
        assertEquals(4.0, first.getScaling(), "alpha / sqrt(r)");
        NDArray x = input(3);
        NDArray y = forward(first, manager, x);
        Reference.Expected expected =
                Reference.lora(
                        x.toFloatArray(),
                        3,
                        TestModels.IN,
                        first.getWeight().getArray().toFloatArray(),
                        first.getBias().getArray().toFloatArray(),
                        TestModels.HIDDEN,
                        first.getLoraA().getArray().toFloatArray(),
                        first.getLoraB().getArray().toFloatArray(),
                        4,
                        4.0);
        assertWithin(
                expected.value, y.toFloatArray(), expected.bound, "the branch at alpha / sqrt(r)");
    }

    @Test
    void disabledScopeComputesTheBaseModel() {
        SequentialBlock mlp = TestModels.mlp(manager, 1);
        NDArray x = input(5);
        float[] base = forward(mlp, manager, x).toFloatArray();
        LoRAModel model = new LoRAModel(mlp, allLinear().build());
        perturb(model);
        Map<String, float[]> params = TestModels.snapshot(mlp);
        Reference.Expected plain = reference(params, x, false);
        Reference.Expected expected = reference(params, x, true);
        assertWithin(plain.value, base, plain.bound, "the base MLP");
        float[] adapted = forward(model, manager, x).toFloatArray();
        assertWithin(expected.value, adapted, expected.bound, "the adapted MLP");
        assertTrue(maxAbsDiff(base, adapted) > 1e-3);
        try (AdapterScope off = model.disableAdapter()) {
            assertWithin(
                    plain.value,
                    forward(model, manager, x).toFloatArray(),
                    plain.bound,
                    "a disabled adapter computes the base MLP");
        }
        assertWithin(
                expected.value,
                forward(model, manager, x).toFloatArray(),
                expected.bound,
                "the adapter enabled again");
    }

    @Test
    void mergeAndUnloadReturnsAPlainModelWithMergedWeights() {
        LoRAModel model = new LoRAModel(TestModels.mlp(manager, 1), allLinear().build());
        perturb(model);
        NDArray x = input(5);
        Reference.Expected expected = reference(TestModels.snapshot(model.getBaseModel()), x, true);
        assertWithin(
                expected.value,
                forward(model, manager, x).toFloatArray(),
                expected.bound,
                "unmerged");
        Block plain = model.mergeAndUnload();
        for (String path : List.of("0", "2", "4")) {
            Block block = BlockPaths.blocks(plain).get(path);
            assertSame(Linear.class, block.getClass(), path);
        }
        assertEquals(6, BlockPaths.parameters(plain).size(), "no adapter parameters left");
        assertWithin(
                expected.value,
                forward(plain, manager, x).toFloatArray(),
                expected.bound,
                "the unloaded model with merged weights");
        assertThrows(IllegalStateException.class, model::merge);
        // the unloaded base model initialises again without complaint (e.g. in a new Trainer)
        plain.initialize(
                manager, ai.djl.ndarray.types.DataType.FLOAT32, new Shape(1, TestModels.IN));
    }

    @Test
    void aPatternThatMatchesNothingListsThePathsThatExist() {
        SequentialBlock mlp = TestModels.mlp(manager, 1);
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                new LoRAModel(
                                        mlp,
                                        LoRAConfig.builder()
                                                .setTargetModules(".*q_proj.*")
                                                .build()));
        assertTrue(e.getMessage().contains(".*q_proj.*"), e.getMessage());
        assertTrue(e.getMessage().contains("<n> (Linear)"), e.getMessage());
        assertTrue(e.getMessage().contains("(LambdaBlock)"), e.getMessage());
    }

    @Test
    void aMatchThatIsNotALinearNamesItsPathAndType() {
        SequentialBlock mlp = TestModels.mlp(manager, 1);
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                new LoRAModel(
                                        mlp,
                                        LoRAConfig.builder().setTargetModules("0", "1").build()));
        assertTrue(e.getMessage().contains("matched 1, a ai.djl.nn.LambdaBlock"), e.getMessage());
        assertNotEquals(LoRALinear.class, BlockPaths.blocks(mlp).get("0").getClass(), "untouched");
    }

    @Test
    void genericLoadingDispatchesOnPeftType(
            @org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws java.io.IOException {
        LoRAModel model = new LoRAModel(TestModels.mlp(manager, 1), allLinear().build());
        model.savePretrained(dir);
        PeftModel loaded = PeftModel.fromPretrained(TestModels.mlp(manager, 1), dir);
        assertTrue(loaded instanceof LoRAModel);
        assertEquals(model.getPeftConfig(), loaded.getPeftConfig());
    }
}
