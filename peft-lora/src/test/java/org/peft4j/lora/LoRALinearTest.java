package org.peft4j.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.U;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;
import static org.peft4j.core.testing.ArrayAssertions.assertWithin;
import static org.peft4j.core.testing.ArrayAssertions.gamma;

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
        // With B = 0 the branch adds exact zeros, so both layers compute fl(x W^T + b); they may
        // sum in other orders (MKL's path depends on the buffers), each within Reference's bound
        // of x W^T + b, hence apart by at most twice that.
        Reference.Expected plain =
                Reference.lora(
                        x.toFloatArray(),
                        N,
                        IN,
                        lora.getWeight().getArray().toFloatArray(),
                        lora.getBias().getArray().toFloatArray(),
                        OUT,
                        null,
                        null,
                        0,
                        0);
        assertWithin(
                Reference.toDouble(expected),
                run(lora, x, false),
                plain.bound(2),
                "a fresh adapter against its base layer");
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
        Reference.Expected expected =
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
        assertWithin(expected.value, run(lora, x, false), expected.bound, "2-D inference");
        NDArray batched = x.reshape(1, N, IN);
        assertWithin(expected.value, run(lora, batched, false), expected.bound, "3-D inference");
        assertWithin(expected.value, run(lora, x, true), expected.bound, "training");
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
        Reference.Expected expected =
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
            assertWithin(
                    expected.value,
                    run(lora, input.reshape(4, 10, IN), false),
                    expected.bound,
                    "inference through the effective weight");
            assertWithin(
                    expected.value,
                    run(lora, input, true),
                    expected.bound,
                    "training through the branch");
        }
        assertSameBits(
                w,
                lora.getWeight().getArray().toFloatArray(),
                "the effective weight is a new array: W is never written");
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
        float[] a = lora.getLoraA().getArray().toFloatArray();
        float[] b = lora.getLoraB().getArray().toFloatArray();
        Reference.Expected expected =
                Reference.lora(x.toFloatArray(), N, IN, original, null, OUT, a, b, 4, 4.0);
        float[] unmerged = run(lora, x, false);
        assertWithin(expected.value, unmerged, expected.bound, "unmerged");
        assertTrue(lora.merge());
        assertFalse(lora.merge(), "merging twice changes nothing");
        assertTrue(lora.isMerged());
        assertWithin(expected.value, run(lora, x, false), expected.bound, "merged");
        assertWithin(expected.value, run(base, x, false), expected.bound, "the base layer, merged");
        // W + s B A: fl(B A) sums r terms, the scale and the addition round once each
        double[][] merged = mergedWeight(original, a, b, 4, 4.0);
        double[] mergedBound = new double[merged[0].length];
        for (int i = 0; i < mergedBound.length; i++) {
            mergedBound[i] = gamma(4 + 2) * (Math.abs(original[i]) + merged[1][i]);
        }
        assertWithin(
                merged[0],
                lora.getWeight().getArray().toFloatArray(),
                mergedBound,
                "the merged weight against W + s B A in double");
        assertTrue(lora.unmerge());
        // fl(fl(W + d) - d') with d' the delta computed again (within gamma(r + 1) of s B A, as
        // d is): W comes back to within the rounding of the two additions, u (|W| + |W + d|),
        // plus |d - d'|
        double[] restoredBound = new double[original.length];
        for (int i = 0; i < restoredBound.length; i++) {
            restoredBound[i] =
                    2 * U * (Math.abs(original[i]) + merged[1][i])
                            + 2 * gamma(4 + 1) * merged[1][i];
        }
        assertWithin(
                Reference.toDouble(original),
                lora.getWeight().getArray().toFloatArray(),
                restoredBound,
                "unmerge restores W to within rounding");
        // W restored to within its rounding adds at most the bound's order again
        assertWithin(expected.value, run(lora, x, false), expected.bound(2), "unmerged again");
    }

    /** {@code {W + s B A, |s| |B| |A|}} in double precision. */
    private static double[][] mergedWeight(float[] w, float[] a, float[] b, int r, double s) {
        double[] out = new double[OUT * IN];
        double[] magnitude = new double[OUT * IN];
        for (int o = 0; o < OUT; o++) {
            for (int i = 0; i < IN; i++) {
                double d = 0;
                double m = 0;
                for (int k = 0; k < r; k++) {
                    d += (double) b[o * r + k] * a[k * IN + i];
                    m += Math.abs((double) b[o * r + k] * a[k * IN + i]);
                }
                out[o * IN + i] = w[o * IN + i] + s * d;
                magnitude[o * IN + i] = Math.abs(s) * m;
            }
        }
        return new double[][] {out, magnitude};
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
        assertSameBits(
                before,
                lora.getWeight().getArray().toFloatArray(),
                "a safe merge forms its candidate aside: a refused one never writes W");
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
        float[] a = lora.getLoraA().getArray().toFloatArray();
        float[] b = lora.getLoraB().getArray().toFloatArray();
        Reference.Expected expected =
                Reference.lora(
                        x.toFloatArray(),
                        2000,
                        IN,
                        lora.getWeight().getArray().toFloatArray(),
                        null,
                        OUT,
                        a,
                        b,
                        4,
                        1);
        assertWithin(expected.value, inference, expected.bound, "inference, without dropout");
        float[] training = run(lora, x, true);
        float[] baseOut = run(base, x, false);
        int rowsEqualToInference = 0;
        double[] meanBranch = new double[OUT];
        double roundingOfABranch = 0; // a branch is a difference of two outputs within bounds
        for (int row = 0; row < 2000; row++) {
            boolean same = true;
            for (int o = 0; o < OUT; o++) {
                int i = row * OUT + o;
                same &= Math.abs(training[i] - inference[i]) <= 2 * expected.bound[i];
                meanBranch[o] += (training[i] - baseOut[i]) / 2000;
                roundingOfABranch = Math.max(roundingOfABranch, 4 * expected.bound[i]);
            }
            rowsEqualToInference += same ? 1 : 0;
        }
        assertTrue(rowsEqualToInference < 20, "dropout changes the training rows");
        for (int o = 0; o < OUT; o++) {
            // per row, the branch is sum_k c_k 2 m_k with c_k = s sum_j B_oj A_jk and m_k
            // Bernoulli(1/2): mean sum_k c_k, variance sum_k c_k^2. Five standard deviations of
            // the mean of 2000 independent rows fail by chance with probability below 1e-6.
            double variance = 0;
            for (int k = 0; k < IN; k++) {
                double c = 0;
                for (int j = 0; j < 4; j++) {
                    c += (double) b[o * 4 + j] * a[j * IN + k];
                }
                variance += c * c;
            }
            double branch = inference[o] - baseOut[o];
            assertEquals(
                    branch,
                    meanBranch[o],
                    5 * Math.sqrt(variance / 2000) + roundingOfABranch,
                    "inverted dropout keeps the mean: within 5 standard deviations");
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
        // the branch is computed in float16, the bias added in float32: Reference bounds that
        // with float16's unit roundoff for each of its roundings
        float[] input = x.toFloatArray();
        Reference.Expected expected =
                Reference.layer(
                        Reference.toDouble(input),
                        new double[input.length],
                        N,
                        IN,
                        lora.getWeight().getArray().toFloatArray(),
                        lora.getBias().getArray().toFloatArray(),
                        OUT,
                        lora.getLoraA().getArray().toType(DataType.FLOAT32, false).toFloatArray(),
                        lora.getLoraB().getArray().toType(DataType.FLOAT32, false).toFloatArray(),
                        4,
                        2,
                        Reference.U16);
        assertWithin(expected.value, y.toFloatArray(), expected.bound, "a float16 branch");
    }

    @Test
    void aFloat16AdapterLeavesTheBaseBiasInFloat32() {
        Linear base = base(true);
        // a bias float16 cannot hold: 1 + 2^-15 rounds to 1 in float16 (11 significant bits)
        NDArray bias = base.getParameters().get("bias").getArray();
        bias.subi(bias).addi(1 + 0x1p-15f);
        LoRALinear lora = LoRALinear.builder(base).setR(4).optDtype(DataType.FLOAT16).build();
        NDArray x = manager.randomNormal(new Shape(N, IN));
        float[] input = x.toFloatArray();
        // B starts at zero, so the layer is its base: x W^T + b within float32 rounding of the
        // product and the two additions, with b kept whole
        Reference.Expected expected =
                Reference.layer(
                        Reference.toDouble(input),
                        new double[input.length],
                        N,
                        IN,
                        lora.getWeight().getArray().toFloatArray(),
                        bias.toFloatArray(),
                        OUT,
                        null,
                        null,
                        0,
                        0,
                        U);
        assertWithin(
                expected.value,
                run(lora, x, false),
                expected.bound,
                "a float16 adapter with B = 0 and a float32 bias");
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
