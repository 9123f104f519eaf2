package org.peft4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.lora.LoRALinear;
import org.peft4j.lora.LoRAModel;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.prefix.PrefixConfig;
import org.peft4j.prefix.PrefixModelForCausalLM;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code peft4j merge-adapters} end to end on stories260K: the written directory is an ordinary
 * adapter whose deltas are the weighted sum of the inputs' deltas (computed here in double
 * precision from the inputs' saved arrays and {@code alpha / r}), and each refusal is one line
 * naming the option or adapter.
 */
class MergeAdaptersCommandTest {

    @TempDir static Path shared;

    private static NDManager manager;
    private static Path first; // q_proj, v_proj; r 4, alpha 8
    private static Path second; // v_proj, o_proj; r 2, alpha 4
    private static Path prefix;

    @BeforeAll
    static void setUp() throws IOException {
        manager = NDManager.newBaseManager();
        first = save("first", 3, 4, 8, "q_proj", "v_proj");
        second = save("second", 5, 2, 4, "v_proj", "o_proj");
        save("third", 7, 2, 2, "q_proj", "v_proj"); // r 2 as second: linear
        prefix = shared.resolve("prefix");
        LlamaForCausalLM llama = llama();
        PrefixConfig config = PrefixConfig.builder().fromModel(llama).setNumPrefixTokens(4).build();
        new PrefixModelForCausalLM(llama, config).savePretrained(prefix);
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    private static LlamaForCausalLM llama() throws IOException {
        return LlamaForCausalLM.fromPretrained(Fixtures.stories260K(), manager);
    }

    private static Path save(String name, int seed, int r, double alpha, String... targets)
            throws IOException {
        Path dir = shared.resolve(name);
        LoRAModel lora =
                new LoRAModel(
                        llama(),
                        LoRAConfig.builder()
                                .setTargetModules(List.of(targets))
                                .optR(r)
                                .optLoraAlpha(alpha)
                                .build());
        TestAdapters.perturbB(lora, manager, seed, 0.3f).savePretrained(dir);
        return dir;
    }

    private static String[] run(Path output, String... more) {
        List<String> args =
                new ArrayList<>(
                        List.of(
                                "merge-adapters",
                                "--model",
                                Fixtures.stories260K().toString(),
                                "--output",
                                output.toString()));
        args.addAll(List.of(more));
        return CliRunner.run(args.toArray(new String[0]));
    }

    /** Each layer's {@code s B A: [out, in]} in double precision, row-major. */
    private static Map<String, double[]> deltas(Path dir, double weight) throws IOException {
        LoRAModel lora = LoRAModel.fromPretrained(llama(), dir);
        // s from the files' alpha and r, not from the code under test
        double s = lora.getPeftConfig().getLoraAlpha() / lora.getPeftConfig().getR();
        Map<String, double[]> out = new LinkedHashMap<>();
        for (Map.Entry<String, LoRALinear> e : lora.getLoRALayers().entrySet()) {
            double[] a = doubles(e.getValue().getLoraA().getArray());
            double[] b = doubles(e.getValue().getLoraB().getArray());
            int r = (int) e.getValue().getLoraA().getArray().getShape().get(0);
            int in = a.length / r;
            int rows = b.length / r;
            double[] d = new double[rows * in];
            for (int o = 0; o < rows; o++) {
                for (int j = 0; j < in; j++) {
                    double sum = 0;
                    for (int k = 0; k < r; k++) {
                        sum += b[o * r + k] * a[k * in + j];
                    }
                    d[o * in + j] = weight * s * sum;
                }
            }
            out.put(e.getKey(), d);
        }
        return out;
    }

    private static double[] doubles(NDArray array) {
        try (NDArray wide = array.toType(DataType.FLOAT64, true)) {
            return wide.toDoubleArray();
        }
    }

    @Test
    void catWritesAnAdapterWhoseDeltasAreTheWeightedSum(@TempDir Path dir) throws IOException {
        Path output = dir.resolve("combined");
        String[] result =
                run(output, both("--weights", "0.7", "-0.3", "--combination", "cat"));
        assertEquals("0", result[0], result[2]);
        assertEquals(output.toString(), result[1].strip());

        Map<String, double[]> expected = new LinkedHashMap<>(deltas(first, 0.7));
        deltas(second, -0.3)
                .forEach((path, d) -> expected.merge(path, d, MergeAdaptersCommandTest::sum));
        LoRAModel combined = LoRAModel.fromPretrained(llama(), output);
        assertEquals(6, combined.getPeftConfig().getR());
        assertEquals(1.0, combined.getPeftConfig().getScaling());
        Map<String, double[]> actual = deltas(output, 1);
        assertEquals(expected.keySet(), actual.keySet());
        for (String path : expected.keySet()) {
            double[] e = expected.get(path);
            double[] a = actual.get(path);
            double max = 0;
            for (double v : e) {
                max = Math.max(max, Math.abs(v));
            }
            for (int j = 0; j < e.length; j++) {
                // float32 factors: rounding of the larger terms, summed over the 6 ranks
                assertEquals(e[j], a[j], 1e-5 * max + 1e-9, path + "[" + j + "]");
            }
        }
    }

    @Test
    void generateReadsTheCombinedAdapter(@TempDir Path dir) {
        Path output = dir.resolve("linear");
        Path third = shared.resolve("third");
        String[] result =
                run(
                        output,
                        "--adapter",
                        second.toString(),
                        "--adapter",
                        third.toString(),
                        "--weights",
                        "0.5",
                        "0.5",
                        "--combination",
                        "linear");
        assertEquals("0", result[0], result[2]);
        String[] generated =
                CliRunner.run(
                        "generate",
                        "--model",
                        Fixtures.stories260K().toString(),
                        "--adapter",
                        output.toString(),
                        "--max-new-tokens",
                        "8");
        assertEquals("0", generated[0], generated[2]);
        assertTrue(!generated[1].isBlank(), generated[2]);
    }

    private static double[] sum(double[] x, double[] y) {
        double[] s = x.clone();
        for (int j = 0; j < s.length; j++) {
            s[j] += y[j];
        }
        return s;
    }

    @Test
    void svdWritesTheRankAsked(@TempDir Path dir) throws IOException {
        Path output = dir.resolve("svd");
        String[] result = run(output, both("--weights", "0.5", "0.5", "--rank", "3"));
        assertEquals("0", result[0], result[2]);
        LoRAModel combined = LoRAModel.fromPretrained(llama(), output);
        assertEquals(3, combined.getPeftConfig().getR());
        assertEquals(3.0, combined.getPeftConfig().getLoraAlpha());
    }

    @Test
    void refusalsNameTheOptionOrTheAdapter(@TempDir Path dir) {
        Path output = dir.resolve("out");
        String[] result = run(output, both("--weights", "1"));
        assertEquals("2", result[0]);
        assertTrue(
                result[2].contains("--weights: 1 weights for 2 --adapter directories"), result[2]);

        result = run(output, both("--weights", "1", "1", "--combination", "ties"));
        assertEquals("2", result[0]);
        assertTrue(result[2].contains("--combination: unknown combination \"ties\""), result[2]);

        result = run(output, both("--weights", "1", "1", "--combination", "cat", "--rank", "2"));
        assertEquals("2", result[0]);
        assertTrue(result[2].contains("--rank applies to --combination svd only"), result[2]);

        result = run(output, both("--weights", "1", "1", "--combination", "linear"));
        assertEquals(
                "peft4j merge-adapters: the linear combination needs adapters of one r, but "
                        + first
                        + " has r = 4 and "
                        + second
                        + " r = 2: use cat or svd instead",
                CliRunner.error(result));

        result =
                run(
                        output,
                        "--adapter",
                        first.toString(),
                        "--adapter",
                        prefix.toString(),
                        "--weights",
                        "1",
                        "1");
        assertTrue(
                CliRunner.error(result)
                        .startsWith("peft4j merge-adapters: --adapter " + prefix + " holds a "),
                CliRunner.error(result));
        assertTrue(CliRunner.error(result).contains("only LoRA adapters combine"));

        result = run(first, both("--weights", "1", "1", "--overwrite"));
        assertTrue(
                CliRunner.error(result).contains("is --adapter itself"), CliRunner.error(result));
    }

    /** {@code --adapter first --adapter second} and more arguments. */
    private static String[] both(String... more) {
        List<String> all =
                new ArrayList<>(
                        List.of("--adapter", first.toString(), "--adapter", second.toString()));
        all.addAll(List.of(more));
        return all.toArray(new String[0]);
    }
}
