package org.peft4j.models.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.peft4j.core.testing.ArrayAssertions.assertClose;

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
        float[] expected = new float[8];
        for (int row = 0; row < 2; row++) {
            double ms = 0;
            for (int i = 0; i < 4; i++) {
                ms += x[row * 4 + i] * x[row * 4 + i] / 4.0;
            }
            for (int i = 0; i < 4; i++) {
                expected[row * 4 + i] = (float) (x[row * 4 + i] / Math.sqrt(ms + 1e-5) * w[i]);
            }
        }
        assertClose(expected, y.toFloatArray(), 1e-6);
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
        assertArrayEquals(
                cosSin.get(0).toFloatArray(), tables.get(0).toFloatArray(), "table lookup");
        assertArrayEquals(
                cosSin.get(1).toFloatArray(), tables.get(1).toFloatArray(), "table lookup");
        float[] viaMatrix = rope.apply(x, tables.get(0), tables.get(1)).toFloatArray();
        assertArrayEquals(rotated, viaMatrix, "the rotation matrix is exact");
        float[] expected = new float[2 * d];
        for (int p = 0; p < 2; p++) {
            int position = p == 0 ? 0 : 3;
            for (int i = 0; i < d / 2; i++) {
                double angle = position / Math.pow(10000, 2.0 * i / d);
                double a = q[i];
                double b = q[i + d / 2];
                expected[p * d + i] = (float) (a * Math.cos(angle) - b * Math.sin(angle));
                expected[p * d + i + d / 2] = (float) (b * Math.cos(angle) + a * Math.sin(angle));
            }
        }
        assertClose(expected, rotated, 1e-5);
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
        assertEquals(freqs[0], scaled[0], 1e-15);
        assertEquals(freqs[1] / 8, scaled[1], 1e-15);
        assertEquals((2.0 / 3) * medium / 8 + (1.0 / 3) * medium, scaled[2], 1e-12);
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
        // padded query rows attend to nothing real in the 2-D form; compare the real tokens
        assertClose(twoD.get("0, 2:").toFloatArray(), fourD.get("0, 2:").toFloatArray(), 1e-5);
        assertClose(twoD.get(1).toFloatArray(), fourD.get(1).toFloatArray(), 1e-5);
        assertEquals(DataType.FLOAT32, twoD.getDataType());
    }
}
