package org.peft4j.models.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.peft4j.core.testing.ArrayAssertions.U;
import static org.peft4j.core.testing.ArrayAssertions.assertRoundingClose;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;
import static org.peft4j.core.testing.ArrayAssertions.assertWithin;
import static org.peft4j.core.testing.ArrayAssertions.gamma;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The pieces of Llama's math against formulas computed here in plain Java. */
class LlamaMathTest {

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    @Test
    void rmsNormMatchesItsFormula() {
        float[] x = {1, -2, 3, 0.5f, 4, -1, 0, 2};
        float[] w = {1, 2, 0.5f, -1};
        NDArray y = RMSNorm.normalize(manager.create(x, new Shape(2, 4)), manager.create(w), 1e-5f);
        double[] expected = new double[8];
        double[] bound = new double[8];
        for (int row = 0; row < 2; row++) {
            double ms = 0;
            for (int i = 0; i < 4; i++) {
                ms += (double) x[row * 4 + i] * x[row * 4 + i] / 4.0;
            }
            for (int i = 0; i < 4; i++) {
                // float32: the squares and their sum of 4 (positive terms, so relative: gamma(4)),
                // the mean, epsilon (itself rounded to float), the root (which halves a relative
                // error, counted whole), the division and the weight: relative gamma(9)
                expected[row * 4 + i] = x[row * 4 + i] / Math.sqrt(ms + 1e-5) * w[i];
                bound[row * 4 + i] = gamma(9) * Math.abs(expected[row * 4 + i]);
            }
        }
        assertWithin(expected, y.toFloatArray(), bound, "RMSNorm against double precision");
    }

    @Test
    void ropeRotatesHalvesByPositionTimesFrequency() {
        int d = 8;
        RotaryEmbedding rope = new RotaryEmbedding(d, 10000, null);
        NDList cosSin = rope.cosSin(manager.create(new long[] {0, 3}, new Shape(1, 2)));
        float[] q = {1, 2, 3, 4, 5, 6, 7, 8};
        NDArray x = manager.create(q).reshape(1, 1, 1, d).repeat(2, 2); // [1, 1, 2, 8]
        float[] rotated = rope.apply(x, cosSin.get(0), cosSin.get(1)).toFloatArray();
        NDList tables = rope.cosSin(manager.create(new long[] {0, 3}, new Shape(1, 2)), 4, manager);
        // The table rows are the same angles (one correctly rounded product each) through cos
        // and sin over another array: a vectorised kernel may take its SIMD or its scalar path
        // for an element depending on the array's length and the CPU's vector width, each within
        // 1 ulp (2 u relative) of the true value, so they agree to 4 u, not bitwise.
        float[] directCos = cosSin.get(0).toFloatArray();
        float[] directSin = cosSin.get(1).toFloatArray();
        assertWithin(
                toDouble(directCos),
                tables.get(0).toFloatArray(),
                ulpBound(directCos, 2),
                "the cos table against cos computed directly");
        assertWithin(
                toDouble(directSin),
                tables.get(1).toFloatArray(),
                ulpBound(directSin, 2),
                "the sin table against sin computed directly");
        // Once the tables exist the rotation is x R, R the signed permutation: each output is one
        // exact term x_j (+-1) plus exact zeros, so it equals rotateHalf(x) whatever the order;
        // the products with cos and sin and their sum are correctly rounded element-wise ops.
        float[] viaMatrix = rope.apply(x, tables.get(0), tables.get(1)).toFloatArray();
        float[] viaHalves =
                x.mul(tables.get(0))
                        .add(RotaryEmbedding.rotateHalf(x).mul(tables.get(1)))
                        .toFloatArray();
        assertSameBits(
                viaHalves,
                viaMatrix,
                "the rotation matrix is exact: one +-1 term per output (x has no zeros)");
        double[] expected = new double[2 * d];
        double[] bound = new double[2 * d];
        for (int p = 0; p < 2; p++) {
            int position = p == 0 ? 0 : 3;
            for (int i = 0; i < d / 2; i++) {
                double angle = position / Math.pow(10000, 2.0 * i / d);
                double a = q[i];
                double b = q[i + d / 2];
                double cos = Math.cos(angle);
                double sin = Math.sin(angle);
                expected[p * d + i] = a * cos - b * sin;
                expected[p * d + i + d / 2] = b * cos + a * sin;
                // float32: the frequency and the angle are rounded (2 u |angle|, which moves cos
                // and sin by as much), cos and sin are within 1 ulp, then two products and a sum
                double terms = Math.abs(a * cos) + Math.abs(b * sin);
                bound[p * d + i] = 2 * U * angle * (Math.abs(a) + Math.abs(b)) + 5 * U * terms;
                terms = Math.abs(b * cos) + Math.abs(a * sin);
                bound[p * d + i + d / 2] =
                        2 * U * angle * (Math.abs(a) + Math.abs(b)) + 5 * U * terms;
            }
        }
        assertWithin(expected, rotated, bound, "RoPE against double precision");
    }

    private static double[] toDouble(float[] values) {
        double[] out = new double[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = values[i];
        }
        return out;
    }

    /** {@code ulps} units in the last place of each value: {@code 2 u |v|} each. */
    private static double[] ulpBound(float[] values, int ulps) {
        double[] out = new double[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = ulps * Math.ulp(values[i]);
        }
        return out;
    }

    @Test
    void llama3ScalingKeepsHighDividesLowAndBlendsBetween() {
        RopeScaling scaling = new RopeScaling("llama3", 8, 1, 4, 8192);
        // wavelength 2 pi / f: high frequencies below 8192 / 4 = 2048, low ones above 8192
        double high = 2 * Math.PI / 100;
        double low = 2 * Math.PI / 20000;
        double medium = 2 * Math.PI / 4096; // smooth = (8192 / 4096 - 1) / (4 - 1) = 1/3
        double[] freqs = {high, low, medium};
        double[] scaled = freqs.clone();
        scaling.apply(scaled);
        assertEquals(freqs[0], scaled[0], "a high frequency is kept as it is");
        assertEquals(freqs[1] / 8, scaled[1], "a low one is divided by 8, exactly in binary");
        // the blend takes about 10 double roundings (2 pi / f, 8192 / wavelength, the smooth
        // factor's subtraction and division, the blend's products and sum), none cancelling much:
        // 16 of 2^-53 relative covers them
        double blended = (2.0 / 3) * medium / 8 + (1.0 / 3) * medium;
        assertEquals(blended, scaled[2], 16 * 0x1p-53 * blended, "blended in between");
    }

    @Test
    void aTwoDimensionalMaskAndItsFourDimensionalFormGiveTheSameLogits() {
        LlamaConfig config = LlamaConfig.builder().setSizes(16, 32, 2, 4, 2, 50).build();
        LlamaForCausalLM model = LlamaForCausalLM.random(config, manager, 7);
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
        ParameterStore ps = new ParameterStore(manager, false);
        NDArray twoD = model.forward(ps, new NDList(ids, positions, mask), false).head();
        NDArray fourD =
                model.forward(
                                ps,
                                new NDList(
                                        ids,
                                        positions,
                                        manager.create(additive, new Shape(2, 1, 4, 4))),
                                false)
                        .head();
        // padded query rows attend to nothing real in the 2-D form; compare the real tokens,
        // the same math in possibly other orders
        double c = LlamaRounding.logits(config, 4);
        assertRoundingClose(twoD.get("0, 2:"), fourD.get("0, 2:"), c, "row 0, 2-D vs 4-D mask");
        assertRoundingClose(twoD.get(1), fourD.get(1), c, "row 1, 2-D vs 4-D mask");
        assertEquals(DataType.FLOAT32, twoD.getDataType());
    }
}
