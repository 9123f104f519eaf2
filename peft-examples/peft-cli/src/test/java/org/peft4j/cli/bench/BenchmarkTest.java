package org.peft4j.cli.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;

import org.junit.jupiter.api.Test;
import org.peft4j.models.llama.LlamaConfig;

import java.io.IOException;

/**
 * The benchmark on the tiny configuration: what it counts (parameters, model FLOPs) is checked
 * against counts made here from the architecture, and every mode reports its keys. Times are not
 * asserted: speed is what the benchmark measures, not what a unit test can.
 */
class BenchmarkTest {

    private static final BenchConfig TINY = BenchConfig.TINY;

    /**
     * double's unit roundoff, {@code 2^-53}. The reported numbers are doubles computed from the
     * measured time (JSON keeps them exactly); what the test derives from them again goes through
     * a few more correctly rounded products and quotients, each within {@code 2^-53} relative,
     * and the counts are integers, exact in double.
     */
    private static final double DOUBLE_U = 0x1p-53;

    private static final int R = 8;

    /** One generation of warm-up instead of forty: the test checks the keys, not the speed. */
    private static JsonNode run(String mode, int longSteps) throws IOException {
        return new Benchmark(TINY, 5, 1, longSteps, 1).run(mode);
    }

    /** Weights of the seven projections of one layer, as {@code {in, out}} pairs. */
    private static long[][] projections(LlamaConfig c) {
        long h = c.getHiddenSize();
        long kv = (long) c.getNumKeyValueHeads() * c.getHeadDim();
        long q = (long) c.getNumAttentionHeads() * c.getHeadDim();
        long i = c.getIntermediateSize();
        return new long[][] {{h, q}, {h, kv}, {h, kv}, {q, h}, {h, i}, {h, i}, {i, h}};
    }

    /** Matrix parameters: the projections and the (tied) output projection. */
    private static long matrixParameters(LlamaConfig c) {
        long perLayer = 0;
        for (long[] p : projections(c)) {
            perLayer += p[0] * p[1];
        }
        return perLayer * c.getNumHiddenLayers() + (long) c.getVocabSize() * c.getHiddenSize();
    }

    private static long loraParameters(LlamaConfig c) {
        long perLayer = 0;
        for (long[] p : projections(c)) {
            perLayer += R * (p[0] + p[1]);
        }
        return perLayer * c.getNumHiddenLayers();
    }

    private static long baseParameters(LlamaConfig c) {
        long norms = (2L * c.getNumHiddenLayers() + 1) * c.getHiddenSize();
        return matrixParameters(c) + norms; // the tied embedding is the output projection
    }

    private static double attentionFlops(LlamaConfig c, int context) {
        return 12.0 * c.getNumHiddenLayers() * c.getHiddenSize() * context;
    }

    /** Model FLOPs per token, recovered from the reported rate and throughput. */
    private static double flopsPerToken(JsonNode out) {
        return out.get("model_gflops").asDouble() * 1e9 / out.get("tokens_per_s").asDouble();
    }

    @Test
    void loraCountsFourFlopsPerFrozenAndSixPerTrainableParameter() throws IOException {
        LlamaConfig c = TINY.llama();
        JsonNode out = run("lora", 0);
        assertEquals(loraParameters(c), out.get("trainable_params").asLong());
        assertEquals(baseParameters(c) + loraParameters(c), out.get("total_params").asLong());
        double expected =
                4.0 * matrixParameters(c)
                        + 6.0 * loraParameters(c)
                        + attentionFlops(c, TINY.sequence());
        // flops x batch x sequence / seconds / 1e9, then x 1e9 / (batch x sequence / seconds):
        // 8 roundings
        assertEquals(expected, flopsPerToken(out), 16 * DOUBLE_U * expected);
        double efficiency = out.get("model_gflops").asDouble() / out.get("gemm_gflops").asDouble();
        assertEquals(efficiency, out.get("efficiency").asDouble(), "the same quotient, exactly");
        assertTrue(out.get("peak_rss_mb").asLong() > 0, out::toString);
    }

    @Test
    void fullFineTuningCountsSixFlopsPerParameter() throws IOException {
        LlamaConfig c = TINY.llama();
        JsonNode out = run("full", 0);
        assertEquals(baseParameters(c), out.get("trainable_params").asLong());
        double expected = 6.0 * matrixParameters(c) + attentionFlops(c, TINY.sequence());
        assertEquals(expected, flopsPerToken(out), 16 * DOUBLE_U * expected);
    }

    @Test
    void prefixTuningAttendsOverThePrefixToo() throws IOException {
        LlamaConfig c = TINY.llama();
        JsonNode out = run("prefix", 0);
        // one key and one value vector of every layer for each of the 64 prefix tokens
        long kv = (long) c.getNumKeyValueHeads() * c.getHeadDim();
        assertEquals(64L * c.getNumHiddenLayers() * 2 * kv, out.get("trainable_params").asLong());
        double expected = 4.0 * matrixParameters(c) + attentionFlops(c, TINY.sequence() + 64);
        assertEquals(expected, flopsPerToken(out), 16 * DOUBLE_U * expected);
    }

    @Test
    void aLongRunReportsMemoryAfterStepFiftyAndAtTheEnd() throws IOException {
        JsonNode out = run("lora", 3);
        assertEquals(3, out.get("long_steps").asInt());
        long start = out.get("rss_mb_after_step_50").asLong();
        long end = out.get("rss_mb_at_end").asLong();
        assertTrue(start > 0 && end > 0, out::toString);
        assertEquals(
                (double) end / start - 1,
                out.get("rss_growth").asDouble(),
                "the same operations on the same integers, exactly");
    }

    @Test
    void comparedModesTimeTheBaseModelInTheSameJvm() throws IOException {
        for (String mode : new String[] {"merged", "unmerged"}) {
            JsonNode out = run(mode, 0);
            assertEquals(Benchmark.COMPARED_PAIRS, out.get("compared_pairs").asInt(), mode);
            assertEquals(loraParameters(TINY.llama()), out.get("trainable_params").asLong());
            double ratio = out.get("speed_vs_base").asDouble();
            assertTrue(ratio > 0 && Double.isFinite(ratio), out::toString);
            assertTrue(out.get("base_ms_per_step").asDouble() > 0, out::toString);
        }
    }

    @Test
    void inferenceAndGenerationReportTheirRates() throws IOException {
        JsonNode infer = run("infer", 0);
        assertEquals(baseParameters(TINY.llama()), infer.get("total_params").asLong());
        double tokens = TINY.batch() * TINY.sequence();
        // tokens / s against tokens / (s x 1000) x 1000: 4 roundings
        assertEquals(
                tokens / infer.get("ms_per_step").asDouble() * 1e3,
                infer.get("tokens_per_s").asDouble(),
                8 * DOUBLE_U * infer.get("tokens_per_s").asDouble());
        JsonNode generate = run("generate", 0);
        for (String key :
                new String[] {"tokens_per_s", "first_tokens_per_s", "recompute_tokens_per_s"}) {
            assertTrue(generate.get(key).asDouble() > 0, key + ": " + generate);
        }
        double speedup =
                generate.get("tokens_per_s").asDouble()
                        / generate.get("recompute_tokens_per_s").asDouble();
        // without / with against (128 / with) / (128 / without): 3 roundings
        assertEquals(speedup, generate.get("cache_speedup").asDouble(), 8 * DOUBLE_U * speedup);
        JsonNode gemm = run("gemm", 0);
        double flops = 2.0 * 2048 * 2048 * 2048;
        assertEquals(
                flops / gemm.get("gflops").asDouble() / 1e6,
                gemm.get("ms_per_step").asDouble(),
                "the same operations on the same doubles, exactly");
        assertTrue(gemm.get("tokens_per_s").isNull(), gemm::toString);
    }

    @Test
    void everyModesLineCarriesTheCommonKeys() throws IOException {
        for (String mode : Benchmark.MODES) {
            JsonNode out = run(mode, 0);
            assertEquals(mode, out.get("mode").asText());
            assertTrue(out.get("peak_rss_mb").asLong() > 0, out::toString);
            for (String key : Benchmark.EVERY_LINE) {
                assertTrue(out.has(key), mode + " lacks " + key + ": " + out);
                // a matrix product has a time but no tokens or parameters; every model mode has all
                boolean moot = "gemm".equals(mode) && !"ms_per_step".equals(key);
                assertEquals(moot, out.get(key).isNull(), mode + "'s " + key + ": " + out);
            }
        }
    }

    @Test
    void badArgumentsAreRefusedWithWhatToDo() {
        IllegalArgumentException mode =
                assertThrows(IllegalArgumentException.class, () -> run("fast", 0));
        assertTrue(mode.getMessage().contains("generate"), mode.getMessage());
        IllegalArgumentException config =
                assertThrows(IllegalArgumentException.class, () -> BenchConfig.of("large"));
        assertTrue(config.getMessage().contains("[small, medium, tiny]"), config.getMessage());
        assertEquals(BenchConfig.MEDIUM, BenchConfig.of("Medium"));
        assertThrows(IllegalArgumentException.class, () -> new Benchmark(TINY, 4, 2, 0));
    }
}
