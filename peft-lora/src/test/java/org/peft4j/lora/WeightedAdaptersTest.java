package org.peft4j.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.lora.TestModels.forward;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.io.NativeArrays;
import org.peft4j.core.tree.BlockPaths;
import org.peft4j.lora.WeightedAdapters.Adapter;
import org.peft4j.lora.WeightedAdapters.Combination;
import org.peft4j.lora.WeightedAdapters.Factors;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * {@link WeightedAdapters} against arithmetic done here, in double precision, from the input
 * adapters' own arrays: the weighted deltas {@code sum_i w_i s_i B_i A_i} (with {@code s_i}
 * computed here from {@code alpha} and {@code r}), HF's linear formula, and the singular values of
 * the weighted delta from a symmetric Jacobi eigen-decomposition of its Gram matrix.
 *
 * <p>Inputs on the MLP {@code 8 -> 64 -> 64 -> 4} (layers 0, 2, 4): {@code x} adapts 0 and 2 with
 * {@code r = 2, alpha = 4}; {@code y} adapts 2 and 4 with {@code r = 3, alpha = 1.5}; {@code z}
 * adapts 2 with {@code r = 4, alpha = 2} and rsLoRA. Layer 2 is adapted by all three.
 */
class WeightedAdaptersTest {

    private static final double[] WEIGHTS = {0.7, -0.4, 1.3};

    private NDManager manager;
    private Adapter x;
    private Adapter y;
    private Adapter z;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
        x = adapter("x", 11, 2, 4, false, "0", "2");
        y = adapter("y", 12, 3, 1.5, false, "2", "4");
        z = adapter("z", 13, 4, 2, true, "2");
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    /** An adapter with random A and B (init_lora_weights=false) over its own base model. */
    private Adapter adapter(
            String name, int seed, int r, double alpha, boolean rslora, String... targets) {
        LoRAConfig config =
                LoRAConfig.builder()
                        .setTargetModules(List.of(targets))
                        .optR(r)
                        .optLoraAlpha(alpha)
                        .optUseRslora(rslora)
                        .optInitLoraWeights(LoRAInit.RANDOM)
                        .build();
        SequentialBlock base = TestModels.mlp(manager, 1);
        Engine.getInstance().setRandomSeed(seed);
        LoRAModel model = new LoRAModel(base, config);
        Adapter adapter = Adapter.of(name, model);
        model.unload();
        return adapter;
    }

    /** {@code s} from alpha and r, not from the config's getScaling. */
    private static double scaling(double alpha, int r, boolean rslora) {
        return rslora ? alpha / Math.sqrt(r) : alpha / r;
    }

    private double[] s() {
        return new double[] {scaling(4, 2, false), scaling(1.5, 3, false), scaling(2, 4, true)};
    }

    /** {@code B A: [out, in]} in double precision, naively. */
    private static double[] product(Factors f) {
        return product(f.getB(), f.getA(), f.getOut(), f.getR(), f.getIn());
    }

    private static double[] product(double[] b, double[] a, int out, int r, int in) {
        double[] d = new double[out * in];
        for (int o = 0; o < out; o++) {
            for (int j = 0; j < in; j++) {
                double sum = 0;
                for (int k = 0; k < r; k++) {
                    sum += b[o * r + k] * a[k * in + j];
                }
                d[o * in + j] = sum;
            }
        }
        return d;
    }

    /** {@code sum_i w_i s_i B_i A_i} at a layer over the inputs that adapt it. */
    private double[] weightedDelta(String path, List<Adapter> inputs) {
        double[] s = s();
        double[] sum = null;
        for (int i = 0; i < inputs.size(); i++) {
            Factors f = inputs.get(i).getLayers().get(path);
            if (f == null) {
                continue;
            }
            double[] d = product(f);
            if (sum == null) {
                sum = new double[d.length];
            }
            for (int j = 0; j < d.length; j++) {
                sum[j] += WEIGHTS[i] * s[i] * d[j];
            }
        }
        return sum;
    }

    private static void assertClose(double[] expected, double[] actual, double tol, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        for (int j = 0; j < expected.length; j++) {
            double scale = Math.max(1, Math.abs(expected[j]));
            assertTrue(
                    Math.abs(expected[j] - actual[j]) <= tol * scale,
                    what + "[" + j + "]: expected " + expected[j] + ", got " + actual[j]);
        }
    }

    private WeightedAdapters combine(Combination combination, Adapter... inputs) {
        return WeightedAdapters.builder()
                .setAdapters(List.of(inputs))
                .setWeights(java.util.Arrays.copyOf(WEIGHTS, inputs.length))
                .setCombination(combination)
                .build();
    }

    @Test
    void catReproducesTheWeightedDeltasExactly() {
        WeightedAdapters cat = combine(Combination.CAT, x, y, z);
        assertEquals(9, cat.getConfig().getR());
        assertEquals(9.0, cat.getConfig().getLoraAlpha());
        assertEquals(1.0, cat.getConfig().getScaling());
        assertEquals(List.of("0", "2", "4"), List.copyOf(cat.getLayers().keySet()));
        for (String path : List.of("0", "2", "4")) {
            Factors f = cat.getLayers().get(path);
            assertEquals(9, f.getR(), path);
            assertClose(weightedDelta(path, List.of(x, y, z)), product(f), 1e-12, "layer " + path);
        }
    }

    @Test
    void catSavedAdapterGivesTheLogitsOfTheBaseWithTheDeltasAdded(@TempDir Path dir)
            throws IOException {
        WeightedAdapters cat = combine(Combination.CAT, x, y, z);
        cat.save(TestModels.mlp(manager, 1), dir);

        SequentialBlock adaptedBase = TestModels.mlp(manager, 1);
        LoRAModel loaded = LoRAModel.fromPretrained(adaptedBase, dir);
        loaded.eval();
        assertEquals(9, loaded.getPeftConfig().getR());
        // the saved float32 factors: their delta against the double reference
        double[] s = s();
        for (Map.Entry<String, LoRALinear> e : loaded.getLoRALayers().entrySet()) {
            Factors f = Factors.of(e.getValue());
            double[] expected = weightedDelta(e.getKey(), List.of(x, y, z));
            double[] bound = magnitudeBound(e.getKey(), s);
            double[] actual = product(f);
            for (int j = 0; j < expected.length; j++) {
                // float32 rounding of each factor, summed over the 9 rank terms
                double tol = 4 * 6e-8 * bound[j] + 1e-12;
                assertTrue(
                        Math.abs(expected[j] - actual[j]) <= tol,
                        e.getKey() + "[" + j + "]: " + expected[j] + " vs " + actual[j]);
            }
        }

        // the base model whose weights have the weighted deltas added, here
        SequentialBlock merged = TestModels.mlp(manager, 1);
        Map<String, Parameter> params = BlockPaths.parameters(merged);
        for (String path : List.of("0", "2", "4")) {
            NDArray w = params.get(path + ".weight").getArray();
            double[] d = weightedDelta(path, List.of(x, y, z));
            double[] values = w.toType(DataType.FLOAT64, true).toDoubleArray();
            for (int j = 0; j < values.length; j++) {
                values[j] += d[j];
            }
            NDArray sum = manager.create(values, w.getShape()).toType(w.getDataType(), false);
            NativeArrays.copyInto(w, sum);
        }
        NDArray input = manager.randomNormal(new Shape(5, TestModels.IN));
        float[] expected = forward(merged, manager, input).toFloatArray();
        float[] actual = forward(loaded, manager, input).toFloatArray();
        for (int j = 0; j < expected.length; j++) {
            double tol = 1e-4 * Math.max(1, Math.abs(expected[j]));
            assertTrue(
                    Math.abs(expected[j] - actual[j]) <= tol,
                    "logit " + j + ": " + expected[j] + " vs " + actual[j]);
        }
    }

    /** {@code sum_i |w_i s_i| sum_k |B_ik| |A_kj|}: the size of the terms rounding acts on. */
    private double[] magnitudeBound(String path, double[] s) {
        List<Adapter> inputs = List.of(x, y, z);
        double[] bound = null;
        for (int i = 0; i < inputs.size(); i++) {
            Factors f = inputs.get(i).getLayers().get(path);
            if (f == null) {
                continue;
            }
            double[] a = f.getA();
            double[] b = f.getB();
            for (int j = 0; j < a.length; j++) {
                a[j] = Math.abs(a[j]);
            }
            for (int j = 0; j < b.length; j++) {
                b[j] = Math.abs(b[j]);
            }
            double[] d = product(b, a, f.getOut(), f.getR(), f.getIn());
            if (bound == null) {
                bound = new double[d.length];
            }
            for (int j = 0; j < d.length; j++) {
                bound[j] += Math.abs(WEIGHTS[i] * s[i]) * d[j];
            }
        }
        return bound;
    }

    @Test
    void adaptersWithNoCommonLayerCombineOverTheUnionOfTheirTargets() {
        // as HF does: a q_proj-only and a v_proj-only adapter make one adapter of both
        Adapter q = adapter("q", 31, 2, 2, false, "4");
        WeightedAdapters cat = combine(Combination.CAT, x, q);
        assertEquals(List.of("0", "2", "4"), List.copyOf(cat.getLayers().keySet()));
        double sq = scaling(2, 2, false);
        double[] expected = product(q.getLayers().get("4"));
        for (int j = 0; j < expected.length; j++) {
            expected[j] *= WEIGHTS[1] * sq;
        }
        assertClose(expected, product(cat.getLayers().get("4")), 1e-12, "layer 4, q's alone");
        double[] fromX = product(x.getLayers().get("0"));
        for (int j = 0; j < fromX.length; j++) {
            fromX[j] *= WEIGHTS[0] * scaling(4, 2, false);
        }
        assertClose(fromX, product(cat.getLayers().get("0")), 1e-12, "layer 0, x's alone");
    }

    @Test
    void linearScalesBothFactorsByTheRootOfWeightTimesScaling() {
        Adapter x2 = adapter("x2", 21, 2, 3, false, "2", "4");
        double[] weights = {0.7, 0.2};
        WeightedAdapters linear =
                WeightedAdapters.builder()
                        .setAdapters(List.of(x, x2))
                        .setWeights(weights)
                        .setCombination(Combination.LINEAR)
                        .build();
        assertEquals(2, linear.getConfig().getR());
        assertEquals(1.0, linear.getConfig().getScaling());
        double[] s = {scaling(4, 2, false), scaling(3, 2, false)};
        List<Adapter> inputs = List.of(x, x2);
        for (String path : List.of("0", "2", "4")) {
            Factors f = linear.getLayers().get(path);
            double[] a = new double[f.getA().length];
            double[] b = new double[f.getB().length];
            for (int i = 0; i < 2; i++) {
                Factors g = inputs.get(i).getLayers().get(path);
                if (g == null) {
                    continue;
                }
                double root = Math.sqrt(weights[i] * s[i]);
                double[] ga = g.getA();
                double[] gb = g.getB();
                for (int j = 0; j < a.length; j++) {
                    a[j] += root * ga[j];
                }
                for (int j = 0; j < b.length; j++) {
                    b[j] += root * gb[j];
                }
            }
            assertClose(a, f.getA(), 1e-14, "A of " + path);
            assertClose(b, f.getB(), 1e-14, "B of " + path);
        }
    }

    @Test
    void svdOfFullRankReproducesTheWeightedDelta() {
        WeightedAdapters svd =
                WeightedAdapters.builder()
                        .setAdapters(List.of(x, y, z))
                        .setWeights(WEIGHTS)
                        .setCombination(Combination.SVD)
                        .optRank(9)
                        .build();
        assertEquals(9, svd.getConfig().getR());
        for (String path : List.of("0", "2", "4")) {
            assertClose(
                    weightedDelta(path, List.of(x, y, z)),
                    product(svd.getLayers().get(path)),
                    1e-12,
                    "layer " + path);
        }
    }

    @Test
    void svdTruncatesToTheBestApproximationOfTheLargestRank() {
        WeightedAdapters svd = combine(Combination.SVD, x, y, z);
        assertEquals(4, svd.getConfig().getR()); // HF's default: the largest r
        assertEquals(1.0, svd.getConfig().getScaling());
        // layers 0 and 4 have one input of rank <= 4: reproduced
        for (String path : List.of("0", "4")) {
            assertClose(
                    weightedDelta(path, List.of(x, y, z)),
                    product(svd.getLayers().get(path)),
                    1e-12,
                    "layer " + path);
        }
        // layer 2: rank 9 cut to 4; Eckart-Young: the error is the discarded singular values
        Factors f = svd.getLayers().get("2");
        double[] d = weightedDelta("2", List.of(x, y, z));
        int n = f.getIn();
        double[] eigen = gramEigenvalues(d, f.getOut(), n);
        java.util.Arrays.sort(eigen);
        double discarded = 0;
        double total = 0;
        for (int j = 0; j < n; j++) {
            total += eigen[j];
            if (j < n - 4) {
                discarded += eigen[j];
            }
        }
        double[] approx = product(f);
        double error = 0;
        for (int j = 0; j < d.length; j++) {
            error += (d[j] - approx[j]) * (d[j] - approx[j]);
        }
        assertTrue(discarded > 1e-3 * total, "the cut must discard something: " + discarded);
        assertEquals(discarded, error, 1e-10 * total);
        // A = V_r^T has orthonormal rows, as HF's Vh
        double[] a = f.getA();
        for (int p = 0; p < 4; p++) {
            for (int q = 0; q < 4; q++) {
                double dot = 0;
                for (int j = 0; j < n; j++) {
                    dot += a[p * n + j] * a[q * n + j];
                }
                assertEquals(p == q ? 1 : 0, dot, 1e-12, "A A^T[" + p + "][" + q + "]");
            }
        }
    }

    /**
     * Against numpy's LAPACK SVD: {@code src/test/python/write_svd_reference.py} wrote three
     * adapters of one layer and the rank-4 cut of their weighted delta {@code U_4 S_4 Vh_4}, unique
     * as the singular values are apart (8.8 and 3.7 at the cut).
     */
    @Test
    void svdMatchesNumpysTruncation() throws IOException {
        JsonNode ref;
        try (InputStream in =
                WeightedAdaptersTest.class.getResourceAsStream("/weighted/svd_reference.json")) {
            ref = new ObjectMapper().readTree(in);
        }
        int out = ref.get("out").asInt();
        int in = ref.get("in").asInt();
        int rank = ref.get("rank").asInt();
        List<Adapter> inputs = new java.util.ArrayList<>();
        double[] weights = new double[ref.get("adapters").size()];
        for (int i = 0; i < weights.length; i++) {
            JsonNode a = ref.get("adapters").get(i);
            int r = a.get("r").asInt();
            LoRAConfig config =
                    LoRAConfig.builder()
                            .setTargetModules("layer")
                            .optR(r)
                            .optLoraAlpha(a.get("alpha").asDouble())
                            .optUseRslora(a.get("rslora").asBoolean())
                            .build();
            Factors f = new Factors(r, in, out, values(a.get("A")), values(a.get("B")));
            inputs.add(new Adapter("n" + i, config, Map.of("layer", f)));
            weights[i] = a.get("weight").asDouble();
        }
        Factors f =
                WeightedAdapters.builder()
                        .setAdapters(inputs)
                        .setWeights(weights)
                        .setCombination(Combination.SVD)
                        .optRank(rank)
                        .build()
                        .getLayers()
                        .get("layer");
        double[] sv = values(ref.get("singular_values"));
        assertClose(values(ref.get("truncated_delta")), product(f), 1e-12 * sv[0], "U_4 S_4 Vh_4");
        // B = U_R S_R: its column norms are the singular values
        double[] b = f.getB();
        for (int n = 0; n < rank; n++) {
            double norm = 0;
            for (int o = 0; o < out; o++) {
                norm += b[o * rank + n] * b[o * rank + n];
            }
            assertEquals(sv[n], Math.sqrt(norm), 1e-12 * sv[0], "singular value " + n);
        }
    }

    private static double[] values(JsonNode array) {
        double[] v = new double[array.size()];
        for (int j = 0; j < v.length; j++) {
            v[j] = array.get(j).asDouble();
        }
        return v;
    }

    /** The eigenvalues of {@code D^T D: [in, in]} by the classic cyclic Jacobi method. */
    private static double[] gramEigenvalues(double[] d, int out, int in) {
        double[] g = new double[in * in];
        for (int i = 0; i < in; i++) {
            for (int j = 0; j < in; j++) {
                double sum = 0;
                for (int o = 0; o < out; o++) {
                    sum += d[o * in + i] * d[o * in + j];
                }
                g[i * in + j] = sum;
            }
        }
        for (int sweep = 0; sweep < 50; sweep++) {
            double off = 0;
            for (int p = 0; p < in; p++) {
                for (int q = p + 1; q < in; q++) {
                    off += g[p * in + q] * g[p * in + q];
                }
            }
            if (off < 1e-30) {
                break;
            }
            for (int p = 0; p < in; p++) {
                for (int q = p + 1; q < in; q++) {
                    double apq = g[p * in + q];
                    if (apq == 0) {
                        continue;
                    }
                    double theta = (g[q * in + q] - g[p * in + p]) / (2 * apq);
                    double t =
                            (theta >= 0 ? 1 : -1)
                                    / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
                    double c = 1 / Math.sqrt(t * t + 1);
                    double sn = t * c;
                    for (int k = 0; k < in; k++) { // G <- G J
                        double gkp = g[k * in + p];
                        double gkq = g[k * in + q];
                        g[k * in + p] = c * gkp - sn * gkq;
                        g[k * in + q] = sn * gkp + c * gkq;
                    }
                    for (int k = 0; k < in; k++) { // G <- J^T G
                        double gpk = g[p * in + k];
                        double gqk = g[q * in + k];
                        g[p * in + k] = c * gpk - sn * gqk;
                        g[q * in + k] = sn * gpk + c * gqk;
                    }
                }
            }
        }
        double[] eigen = new double[in];
        for (int i = 0; i < in; i++) {
            eigen[i] = g[i * in + i];
        }
        return eigen;
    }

    @Test
    void refusesWhatHasNoWeightedCombination() {
        String message =
                assertThrows(
                                IllegalArgumentException.class,
                                () ->
                                        WeightedAdapters.builder()
                                                .setAdapters(List.of(x, y))
                                                .setWeights(1)
                                                .setCombination(Combination.CAT)
                                                .build())
                        .getMessage();
        assertTrue(message.contains("1 weights for 2 adapters [x, y]"), message);

        message =
                assertThrows(
                                IllegalArgumentException.class,
                                () -> combine(Combination.LINEAR, x, y))
                        .getMessage();
        assertTrue(message.contains("x has r = 2 and y r = 3"), message);

        message =
                assertThrows(IllegalArgumentException.class, () -> Combination.of("ties"))
                        .getMessage();
        assertTrue(message.contains("unknown combination \"ties\""), message);


        Factors narrow = new Factors(2, 3, 64, new double[6], new double[128]);
        Adapter other = new Adapter("other", x.getConfig(), Map.of("2", narrow));
        message =
                assertThrows(
                                IllegalArgumentException.class,
                                () -> combine(Combination.CAT, x, other))
                        .getMessage();
        assertTrue(message.contains("layer 2 is [out 64, in 64] in adapter x"), message);

        LoRAConfig named = x.getConfig().toBuilder().optBaseModelNameOrPath("llama-a").build();
        LoRAConfig named2 = x.getConfig().toBuilder().optBaseModelNameOrPath("llama-b").build();
        Adapter a = new Adapter("a", named, x.getLayers());
        Adapter b = new Adapter("b", named2, x.getLayers());
        message =
                assertThrows(IllegalArgumentException.class, () -> combine(Combination.CAT, a, b))
                        .getMessage();
        assertTrue(message.contains("llama-a and llama-b"), message);

        LoRAConfig biased = x.getConfig().toBuilder().optTrainableBias(TrainableBias.ALL).build();
        Adapter c = new Adapter("c", biased, x.getLayers());
        message =
                assertThrows(IllegalArgumentException.class, () -> combine(Combination.CAT, x, c))
                        .getMessage();
        assertTrue(message.contains("adapter c trains biases"), message);

        message =
                assertThrows(
                                IllegalArgumentException.class,
                                () ->
                                        WeightedAdapters.builder()
                                                .setAdapters(List.of(x, y))
                                                .setWeights(0.5, 0.5)
                                                .setCombination(Combination.CAT)
                                                .optRank(3)
                                                .build())
                        .getMessage();
        assertTrue(message.contains("svd combination only, not cat"), message);
    }
}
