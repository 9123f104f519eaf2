package org.peft4j.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertClose;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class LoRALinearTest {

    private static final int IN = 12;
    private static final int OUT = 7;
    private static final int N = 5;

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
        Engine.getInstance().setRandomSeed(1234);
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    private Linear base(boolean bias) {
        Linear linear = Linear.builder().setUnits(OUT).optBias(bias).build();
        linear.initialize(manager, DataType.FLOAT32, new Shape(N, IN));
        if (bias) {
            linear.getParameters()
                    .get("bias")
                    .getArray()
                    .addi(manager.randomNormal(new Shape(OUT)));
        }
        return linear;
    }

    private float[] run(Linear layer, NDArray x, boolean training) {
        return layer.forward(new ParameterStore(manager, false), new NDList(x), training)
                .singletonOrThrow()
                .toFloatArray();
    }

    private static void randomize(LoRALinear layer, NDManager manager) {
        layer.getLoraB().getArray().addi(manager.randomNormal(layer.getLoraB().getShape()));
    }

    @Test
    void sharesTheBaseParametersAndShapesTheAdapter() {
        Linear base = base(true);
        LoRALinear lora = LoRALinear.builder(base).setR(4).build();
        assertSame(base.getParameters().get("weight"), lora.getWeight());
        assertSame(base.getParameters().get("bias"), lora.getBias());
        assertEquals(new Shape(4, IN), lora.getLoraA().getArray().getShape());
        assertEquals(new Shape(OUT, 4), lora.getLoraB().getArray().getShape());
        assertEquals(
                4,
                lora.getParameters().size(),
                "weight, bias, lora_A, lora_B: " + lora.getParameters().keys());
    }

    @Test
    void startsAsTheBaseLayerWithKaimingUniformAAndZeroB() {
        Linear base = base(true);
        NDArray x = manager.randomNormal(new Shape(N, IN));
        float[] expected = run(base, x, false);
        LoRALinear lora = LoRALinear.builder(base).setR(4).optScaling(2).build();
        assertArrayEquals(expected, run(lora, x, false));
        float bound = (float) (1 / Math.sqrt(IN));
        float[] a = lora.getLoraA().getArray().toFloatArray();
        float max = 0;
        for (float v : a) {
            max = Math.max(max, Math.abs(v));
        }
        assertTrue(max <= bound, "A within the Kaiming bound 1/sqrt(in)");
        assertTrue(max > bound / 2, "A spread over the bound, not zero");
        for (float v : lora.getLoraB().getArray().toFloatArray()) {
            assertEquals(0f, v);
        }
    }

    @Test
    void forwardMatchesTheIndependentFormula() {
        Linear base = base(true);
        LoRALinear lora = LoRALinear.builder(base).setR(3).optScaling(16.0 / 3).build();
        randomize(lora, manager);
        NDArray x = manager.randomNormal(new Shape(N, IN));
        float[] expected =
                Reference.lora(
                        x.toFloatArray(),
                        N,
                        IN,
                        lora.getWeight().getArray().toFloatArray(),
                        lora.getBias().getArray().toFloatArray(),
                        OUT,
                        lora.getLoraA().getArray().toFloatArray(),
                        lora.getLoraB().getArray().toFloatArray(),
                        3,
                        16.0 / 3);
        assertClose(expected, run(lora, x, false), 1e-5);
        NDArray batched = x.reshape(1, N, IN);
        assertClose(expected, run(lora, batched, false), 1e-5);
        assertClose(expected, run(lora, x, true), 1e-5);
    }

    @Test
    void inferenceOverManyRowsUsesTheEffectiveWeightWithTheSameResult() {
        // past rows (in + 2 out) > 2 in out, inference forms W + s B A instead of the branch
        int rows = 40;
        Linear base = base(true);
        LoRALinear lora = LoRALinear.builder(base).setR(3).optScaling(16.0 / 3).build();
        randomize(lora, manager);
        NDArray x = manager.randomNormal(new Shape(rows, IN));
        float[] w = lora.getWeight().getArray().toFloatArray();
        float[] expected =
                Reference.lora(
                        x.toFloatArray(),
                        rows,
                        IN,
                        w,
                        lora.getBias().getArray().toFloatArray(),
                        OUT,
                        lora.getLoraA().getArray().toFloatArray(),
                        lora.getLoraB().getArray().toFloatArray(),
                        3,
                        16.0 / 3);
        int owned = manager.getManagedArrays().size();
        try (NDManager pass = manager.newSubManager()) {
            NDArray input = x.duplicate();
            input.attach(pass);
            assertClose(expected, run(lora, input.reshape(4, 10, IN), false), 1e-5);
            assertClose(expected, run(lora, input, true), 1e-5);
        }
        assertArrayEquals(w, lora.getWeight().getArray().toFloatArray(), "W is untouched");
        assertEquals(
                owned,
                manager.getManagedArrays().size(),
                "the effective weight is freed with the pass, not kept by W's manager");
    }

    @Test
    void mergedEqualsUnmergedAndUnmergeRestoresW() {
        Linear base = base(false);
        LoRALinear lora = LoRALinear.builder(base).setR(4).optScaling(4).build();
        randomize(lora, manager);
        NDArray x = manager.randomNormal(new Shape(N, IN));
        float[] original = lora.getWeight().getArray().toFloatArray();
        float[] unmerged = run(lora, x, false);
        assertTrue(lora.merge());
        assertFalse(lora.merge(), "merging twice changes nothing");
        assertTrue(lora.isMerged());
        assertClose(unmerged, run(lora, x, false), 1e-5);
        assertClose(unmerged, run(base, x, false), 1e-5);
        float[] expectedMerged =
                Reference.toFloat(
                        mergedWeight(
                                original,
                                lora.getLoraA().getArray().toFloatArray(),
                                lora.getLoraB().getArray().toFloatArray(),
                                4,
                                4.0));
        assertClose(expectedMerged, lora.getWeight().getArray().toFloatArray(), 1e-5);
        assertTrue(lora.unmerge());
        assertClose(original, lora.getWeight().getArray().toFloatArray(), 1e-6);
        assertClose(unmerged, run(lora, x, false), 1e-5);
    }

    private static double[] mergedWeight(float[] w, float[] a, float[] b, int r, double s) {
        double[] out = new double[OUT * IN];
        for (int o = 0; o < OUT; o++) {
            for (int i = 0; i < IN; i++) {
                double d = 0;
                for (int k = 0; k < r; k++) {
                    d += (double) b[o * r + k] * a[k * IN + i];
                }
                out[o * IN + i] = w[o * IN + i] + s * d;
            }
        }
        return out;
    }

    @Test
    void safeMergeRefusesNonFiniteWeightsAndLeavesWUnchanged() {
        Linear base = base(false);
        LoRALinear lora = LoRALinear.builder(base).setR(2).build();
        lora.getLoraB().getArray().set(new ai.djl.ndarray.index.NDIndex("0, 0"), Float.NaN);
        lora.getLoraA().getArray().set(new ai.djl.ndarray.index.NDIndex("0, 0"), 1f);
        float[] before = lora.getWeight().getArray().toFloatArray();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> lora.merge(true));
        assertTrue(e.getMessage().contains("NaN"), e.getMessage());
        assertFalse(lora.isMerged());
        assertArrayEquals(before, lora.getWeight().getArray().toFloatArray());
    }

    @Test
    void aMergedLayerRefusesToTrain() {
        LoRALinear lora = LoRALinear.builder(base(false)).setR(2).optPath("layer.q").build();
        lora.merge();
        NDArray x = manager.randomNormal(new Shape(N, IN));
        IllegalStateException e =
                assertThrows(IllegalStateException.class, () -> run(lora, x, true));
        assertTrue(e.getMessage().contains("layer.q"), e.getMessage());
    }

    @Test
    void dropoutActsOnTheBranchInTrainingOnly() {
        Linear base = base(false);
        LoRALinear lora = LoRALinear.builder(base).setR(4).optDropout(0.5).build();
        randomize(lora, manager);
        LoRALinear.builder(base(false)).setR(1).build(); // an unrelated layer, for the RNG
        NDArray x = manager.ones(new Shape(2000, IN));
        float[] inference = run(lora, x, false);
        float[] expected =
                Reference.lora(
                        x.toFloatArray(),
                        2000,
                        IN,
                        lora.getWeight().getArray().toFloatArray(),
                        null,
                        OUT,
                        lora.getLoraA().getArray().toFloatArray(),
                        lora.getLoraB().getArray().toFloatArray(),
                        4,
                        1);
        assertClose(expected, inference, 1e-5);
        float[] training = run(lora, x, true);
        float[] baseOut = run(base, x, false);
        int rowsEqualToInference = 0;
        double[] meanBranch = new double[OUT];
        for (int row = 0; row < 2000; row++) {
            boolean same = true;
            for (int o = 0; o < OUT; o++) {
                int i = row * OUT + o;
                same &= Math.abs(training[i] - inference[i]) < 1e-5;
                meanBranch[o] += (training[i] - baseOut[i]) / 2000;
            }
            rowsEqualToInference += same ? 1 : 0;
        }
        assertTrue(rowsEqualToInference < 20, "dropout changes the training rows");
        for (int o = 0; o < OUT; o++) {
            double branch = inference[o] - baseOut[o];
            assertEquals(
                    branch,
                    meanBranch[o],
                    0.15 * Math.abs(branch) + 0.05,
                    "inverted dropout keeps the mean");
        }
    }

    @Test
    void float16AdaptersRunOnAFloat32Base() {
        Linear base = base(true);
        LoRALinear lora =
                LoRALinear.builder(base).setR(4).optScaling(2).optDtype(DataType.FLOAT16).build();
        assertEquals(DataType.FLOAT16, lora.getLoraA().getArray().getDataType());
        randomize(lora, manager);
        NDArray x = manager.randomNormal(new Shape(N, IN));
        NDArray y = lora.forward(new ParameterStore(manager, false), new NDList(x), false).head();
        assertEquals(DataType.FLOAT32, y.getDataType());
        float[] expected =
                Reference.lora(
                        x.toFloatArray(),
                        N,
                        IN,
                        lora.getWeight().getArray().toFloatArray(),
                        lora.getBias().getArray().toFloatArray(),
                        OUT,
                        lora.getLoraA().getArray().toType(DataType.FLOAT32, false).toFloatArray(),
                        lora.getLoraB().getArray().toType(DataType.FLOAT32, false).toFloatArray(),
                        4,
                        2);
        assertClose(expected, y.toFloatArray(), 2e-2);
    }

    @Test
    void wrapsAnUninitialisedLayerAndShapesItOnInitialize() {
        Linear base = Linear.builder().setUnits(OUT).build();
        LoRALinear lora = LoRALinear.builder(base).setR(2).build();
        assertFalse(lora.getLoraA().isInitialized());
        lora.initialize(manager, DataType.FLOAT32, new Shape(N, IN));
        assertEquals(new Shape(OUT, IN), lora.getWeight().getArray().getShape());
        assertEquals(new Shape(2, IN), lora.getLoraA().getArray().getShape());
        assertSame(base.getParameters().get("weight"), lora.getWeight());
    }

    @Test
    void rejectsInvalidSettings() {
        Linear base = base(false);
        assertThrows(
                IllegalArgumentException.class, () -> LoRALinear.builder(base).setR(0).build());
        assertThrows(
                IllegalArgumentException.class,
                () -> LoRALinear.builder(base).setR(2).optDropout(1).build());
        assertThrows(
                IllegalArgumentException.class,
                () -> LoRALinear.builder(base).setR(2).optDtype(DataType.BFLOAT16).build());
        LoRALinear once = LoRALinear.builder(base).setR(2).build();
        assertThrows(
                IllegalArgumentException.class, () -> LoRALinear.builder(once).setR(2).build());
    }
}
