package org.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.U;
import static org.peft4j.core.testing.ArrayAssertions.assertAllClose;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;
import static org.peft4j.core.testing.ArrayAssertions.assertWithin;
import static org.peft4j.core.testing.ArrayAssertions.gamma;
import static org.peft4j.core.testing.ArrayAssertions.maxAbs;

import ai.djl.ndarray.NDManager;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.lm.TokenCrossEntropy;
import org.peft4j.train.data.Dataset;
import org.peft4j.train.data.TokenizedExample;
import org.peft4j.models.llama.LlamaConfig;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.llama.LlamaRounding;
import org.peft4j.models.llama.weights.LlamaCheckpoints;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.lora.LoRAModel;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

class FineTunerTest {

    @TempDir Path dir;

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    static final LlamaConfig TINY = LlamaConfig.builder().setSizes(32, 64, 2, 4, 2, 40).build();

    /** Sequences "a b c -> c b a" over ids 3..39: a learnable task with labels on the answer. */
    static List<TokenizedExample> reversal(int count, long seed) {
        Random random = new Random(seed);
        List<TokenizedExample> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            int n = 3 + random.nextInt(4);
            int[] ids = new int[2 + 2 * n + 1];
            int[] labels = new int[ids.length];
            ids[0] = 1;
            for (int k = 0; k < n; k++) {
                ids[1 + k] = 3 + random.nextInt(37);
            }
            ids[1 + n] = 3; // separator
            for (int k = 0; k < n; k++) {
                ids[2 + n + k] = ids[n - k];
            }
            ids[ids.length - 1] = 2;
            for (int k = 0; k < ids.length; k++) {
                labels[k] = k >= 2 + n ? ids[k] : TokenCrossEntropy.IGNORE_INDEX;
            }
            out.add(new TokenizedExample(ids, labels));
        }
        return out;
    }

    private LoRAModel lora(int seed) {
        return lora(seed, 0.1);
    }

    private LoRAModel lora(int seed, double dropout) {
        LlamaForCausalLM llama = LlamaForCausalLM.random(TINY, manager, 7);
        ai.djl.engine.Engine.getInstance().setRandomSeed(seed);
        return new LoRAModel(
                llama,
                LoRAConfig.builder()
                        .setTargetModules(LlamaForCausalLM.PROJECTIONS)
                        .optR(4)
                        .optLoraAlpha(8)
                        .optLoraDropout(dropout)
                        .build());
    }

    private FineTuner.Result run(LoRAModel model, FineTuneConfig config, Path output, Path resume)
            throws IOException {
        return run(TrainableModel.of(model), config, output, resume);
    }

    private FineTuner.Result run(
            TrainableModel model, FineTuneConfig config, Path output, Path resume)
            throws IOException {
        FineTuner tuner =
                new FineTuner(
                        model,
                        config,
                        new Dataset(reversal(64, 1), config.getSeed()),
                        reversal(16, 2),
                        output,
                        manager,
                        new PrintStream(new ByteArrayOutputStream()));
        return tuner.run(resume);
    }

    @Test
    void examplesLongerThanTheModelsContextAreRefusedBeforeTheFirstStep() {
        LlamaForCausalLM llama =
                LlamaForCausalLM.random(
                        TINY.toBuilder().optMaxPositionEmbeddings(12).build(), manager, 7);
        List<TokenizedExample> train = reversal(16, 1); // 9 to 15 tokens
        int first = 0;
        while (train.get(first).inputIds().length <= 12) {
            first++;
        }
        int at = first;
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                new FineTuner(
                                        TrainableModel.full(llama, out -> {}),
                                        FineTuneConfig.builder().build(),
                                        new Dataset(train, 1),
                                        List.of(),
                                        dir,
                                        manager,
                                        new PrintStream(new ByteArrayOutputStream())));
        assertEquals(
                "the training example at index "
                        + at
                        + " holds "
                        + train.get(at).inputIds().length
                        + " tokens, more than the model's context of 12; encode the data with"
                        + " ExampleEncoder.builder(tokenizer).fromModel(model), which cuts or drops"
                        + " such examples",
                e.getMessage());
        assertFalse(Files.exists(dir.resolve("metrics.csv")), "nothing ran");
    }

    /** The longest reversal example: BOS, 6 tokens, the separator, 6 tokens, EOS. */
    private static final int LONGEST = 15;

    /**
     * How many unit roundoffs of its terms' magnitude a gradient may differ by between two runs of
     * the same steps that sum in other orders (MKL picks its path by the buffers' alignment): the
     * backward pass retraces the forward chain and about as much again, so twice its roundings,
     * and two evaluations; see {@link LlamaRounding}.
     */
    private static final double GRADIENT_ROUNDING =
            LlamaRounding.logits(TINY, LONGEST) * Math.sqrt(2);

    /**
     * Asserts that two runs of the same {@code steps} updates at rates up to {@code lr} reached the
     * same weights but for rounding. Adam divides each gradient by its own root mean square, so a
     * gradient's relative rounding becomes its update's: up to {@code lr GRADIENT_ROUNDING u} a
     * step (the normalised update is at most about 1). Each step also rounds the weight itself,
     * {@code u |w|} in each run.
     */
    private static void assertSameTraining(
            Map<String, float[]> expected, Map<String, float[]> actual, int steps, double lr) {
        assertEquals(expected.keySet(), actual.keySet());
        expected.forEach(
                (name, values) ->
                        assertAllClose(
                                values,
                                actual.get(name),
                                2 * steps * U,
                                steps * lr * GRADIENT_ROUNDING * U,
                                name));
    }

    private static Map<String, float[]> adapter(LoRAModel model) {
        Map<String, float[]> values = new LinkedHashMap<>();
        model.getTrainableParameters()
                .forEach((k, p) -> values.put(k, p.getArray().toFloatArray()));
        return values;
    }

    @Test
    void aResumedRunReachesTheSameWeightsAndLossAsAnUninterruptedOne() throws IOException {
        FineTuneConfig config =
                FineTuneConfig.builder()
                        .optMaxSteps(12)
                        .optBatchSize(8)
                        .optLearningRate(1e-2)
                        .optWarmupSteps(3)
                        .optSchedule(Schedule.Kind.COSINE)
                        .optSaveSteps(6)
                        .optLoggingSteps(2)
                        .build();
        LoRAModel whole = lora(11);
        FineTuner.Result uninterrupted = run(whole, config, dir.resolve("whole"), null);
        assertEquals(12, uninterrupted.steps());

        Path checkpoint = FineTuner.latestCheckpoint(dir.resolve("whole"));
        assertEquals("checkpoint-6", checkpoint.getFileName().toString());
        LoRAModel resumed =
                LoRAModel.fromPretrained(LlamaForCausalLM.random(TINY, manager, 7), checkpoint);
        FineTuner.Result second = run(resumed, config, dir.resolve("resumed"), checkpoint);
        assertEquals(12, second.steps());
        // The resumed run repeats steps 7 to 12 on the saved weights, moments, schedule, data
        // order and dropout seed: the same math, not bitwise the same sums. The last loss is a
        // mean of log-softmaxes of logits that agree to LlamaRounding's bound (relative to the
        // loss, which the largest logit is of the order of), and on weights that agree as below.
        double loss = uninterrupted.lastLoss();
        assertEquals(
                loss,
                second.lastLoss(),
                2 * LlamaRounding.logits(TINY, LONGEST) * U * Math.abs(loss),
                "the last loss");
        // a lost moment, schedule step or dropout seed would move weights by about lr
        assertSameTraining(adapter(whole), adapter(resumed), 6, 1e-2);
    }

    @Test
    void accumulatingTwoHalfBatchesEqualsOneWholeBatch() throws IOException {
        // epsilon 1 makes the first update about lr * g: weights compare gradients, no signs
        FineTuneConfig whole =
                FineTuneConfig.builder()
                        .optMaxSteps(1)
                        .optBatchSize(8)
                        .optLearningRate(1e-2)
                        .optAdamEpsilon(1)
                        .optMaxGradNorm(0)
                        .build();
        FineTuneConfig halves =
                FineTuneConfig.builder()
                        .optMaxSteps(1)
                        .optBatchSize(4)
                        .optGradientAccumulationSteps(2)
                        .optLearningRate(1e-2)
                        .optAdamEpsilon(1)
                        .optMaxGradNorm(0)
                        .build();
        LoRAModel a = lora(3, 0);
        LoRAModel b = lora(3, 0);
        Map<String, float[]> initial = adapter(a);
        run(a, whole, dir.resolve("a"), null);
        run(b, halves, dir.resolve("b"), null);
        Map<String, float[]> wa = adapter(a);
        Map<String, float[]> wb = adapter(b);
        // One update w - lr g / (|g| + 1) ~ w - lr g: the two runs' gradients are the same sum
        // over the 8 examples in two orders, apart by GRADIENT_ROUNDING u of the gradient's
        // magnitude, about that of the update over lr; each run also rounds w once.
        wa.forEach(
                (name, values) -> {
                    float[] w0 = initial.get(name);
                    float[] update = new float[values.length];
                    for (int i = 0; i < values.length; i++) {
                        update[i] = values[i] - w0[i];
                    }
                    double[] bound = new double[values.length];
                    for (int i = 0; i < values.length; i++) {
                        bound[i] =
                                2 * U * Math.abs(values[i])
                                        + 2 * GRADIENT_ROUNDING * U * maxAbs(update);
                    }
                    assertWithin(
                            toDoubles(values),
                            wb.get(name),
                            bound,
                            name + ": one batch of 8 against two accumulated halves");
                });
        assertTrue(
                wa.values().stream()
                        .anyMatch(v -> java.util.Arrays.stream(toDoubles(v)).anyMatch(x -> x != 0)),
                "the step changed B");
    }

    @Test
    void trainingLowersTheLossAndWritesMetricsCurveAndResults() throws IOException {
        FineTuneConfig config =
                FineTuneConfig.builder()
                        .optEpochs(6)
                        .optBatchSize(8)
                        .optLearningRate(2e-2)
                        .optEvalSteps(16)
                        .optLoggingSteps(4)
                        .build();
        LlamaForCausalLM llama = LlamaForCausalLM.random(TINY, manager, 5);
        FineTuner.Result result =
                run(
                        TrainableModel.full(llama, d -> LlamaCheckpoints.save(llama, d)),
                        config,
                        dir,
                        null);
        assertEquals(6 * 8, result.steps());
        assertTrue(
                result.eval() != null && result.eval().loss() < Math.log(40),
                "eval " + result.eval());
        List<String> csv = Files.readAllLines(dir.resolve("metrics.csv"));
        assertTrue(
                csv.get(0).startsWith("step,epoch,learning_rate,loss,perplexity,accuracy"),
                csv.get(0));
        assertEquals(1 + 48 / 4, csv.size(), "a row per logged step");
        double firstLoss = Double.parseDouble(csv.get(1).split(",")[3]);
        double lastLoss = Double.parseDouble(csv.get(csv.size() - 1).split(",")[3]);
        assertTrue(lastLoss < 0.9 * firstLoss, firstLoss + " -> " + lastLoss);
        assertTrue(Files.readString(dir.resolve("loss.svg")).contains("<polyline"));
        assertTrue(Files.readString(dir.resolve("train_results.json")).contains("\"eval_loss\""));
        assertTrue(Files.isRegularFile(dir.resolve("model.safetensors")));
    }

    @Test
    void nativeMemoryStaysFlatOverAFewHundredSteps() throws IOException {
        LoRAModel model = lora(9);
        FineTuneConfig steps300 =
                FineTuneConfig.builder()
                        .optMaxSteps(300)
                        .optBatchSize(8)
                        .optLearningRate(1e-3)
                        .build();
        // malloc's arenas reach their working size within the first runs (seen here: 260 MB to
        // 400 MB over about 600 steps, then flat); after that, a run must not grow
        run(model, steps300, dir.resolve("warm1"), null);
        run(model, steps300, dir.resolve("warm2"), null);
        System.gc();
        int arrays = manager.getManagedArrays().size();
        long rss = rssKb();
        run(model, steps300, dir.resolve("measured"), null);
        System.gc();
        long growth = rssKb() - rss;
        assertEquals(arrays, manager.getManagedArrays().size(), "no array is left behind");
        assertTrue(
                growth < rss / 20,
                "resident memory grew by " + growth + " kB (from " + rss + " kB) over 300 steps");
    }

    @Test
    void garbageCollectionDuringTrainingChangesNothing() throws IOException {
        FineTuneConfig config =
                FineTuneConfig.builder()
                        .optMaxSteps(30)
                        .optBatchSize(8)
                        .optLearningRate(1e-2)
                        .build();
        LoRAModel calm = lora(4);
        run(calm, config, dir.resolve("calm"), null);
        LoRAModel stressed = lora(4);
        // A collector running all the time frees any Java buffer that a tensor still uses (DJL's
        // NDArray.mul(Number) constants saved by autograd did): the weights would then differ.
        Thread collector =
                new Thread(
                        () -> {
                            while (!Thread.currentThread().isInterrupted()) {
                                System.gc();
                                java.nio.ByteBuffer.allocateDirect(1 << 16).put(0, (byte) 1);
                            }
                        });
        collector.setDaemon(true);
        collector.start();
        try {
            run(stressed, config, dir.resolve("stressed"), null);
        } finally {
            collector.interrupt();
        }
        // Buffers freed under a tensor would feed it garbage; what remains between the two runs
        // is rounding, as between a resumed run and an uninterrupted one
        assertSameTraining(adapter(calm), adapter(stressed), 30, 1e-2);
    }

    private static double[] toDoubles(float[] values) {
        double[] out = new double[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = values[i];
        }
        return out;
    }

    static long rssKb() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        return 0;
    }

    @Test
    void theScheduleWarmsUpThenDecays() {
        // exact in double: small integers, their quotients by 4 and 10 here being exact
        Schedule linear = new Schedule(Schedule.Kind.LINEAR, 1.0, 4, 14);
        assertEquals(0.25, linear.rate(0), "warm-up, step 1 of 4");
        assertEquals(1.0, linear.rate(3));
        assertEquals(1.0, linear.rate(4));
        assertEquals(0.5, linear.rate(9));
        Schedule cosine = new Schedule(Schedule.Kind.COSINE, 2.0, 0, 10);
        assertEquals(2.0, cosine.rate(0), "cos(0) = 1 exactly");
        // cos(pi / 2) is 6e-17 (pi is rounded), under half an ulp of 1, so 1 + cos rounds to 1
        assertEquals(1.0, cosine.rate(5), "half way");
        // cos(pi) is within an ulp (2^-53 near -1) of -1, so the rate within peak 2^-53 / 2 of 0
        assertEquals(0.0, cosine.rate(10), 2.0 * 0x1p-54, "the end");
    }

    @Test
    void adamWMatchesTheReferenceFormula() {
        ai.djl.nn.Parameter p =
                ai.djl.nn.Parameter.builder()
                        .setName("w")
                        .setType(ai.djl.nn.Parameter.Type.WEIGHT)
                        .optShape(new ai.djl.ndarray.types.Shape(3))
                        .build();
        p.setInitializer((m, shape, type) -> m.create(new float[] {1f, -2f, 0.5f}));
        p.initialize(manager, ai.djl.ndarray.types.DataType.FLOAT32);
        AdamW adam = new AdamW(Map.of("w", p), 0.9, 0.999, 1e-8, 0.01);
        double[] w = {1, -2, 0.5};
        double[] m = new double[3];
        double[] v = new double[3];
        double[][] grads = {{0.1, -0.2, 0.3}, {0.05, 0.4, -0.1}, {-0.3, 0.0, 0.2}};
        // The engine's kernel takes the betas as float32, and AdamW's bias corrections use the
        // same float32 betas, so the reference is Adam with b1 = 0.9f and b2 = 0.999f exactly
        // (with the double betas, 1 - 0.999 and 1 - 0.999f differ by 1.3e-5 of themselves, which
        // would move the first updates by 6e-6 relative, far above float32 rounding). What is
        // left is float32 rounding: m and v take 3 and 4 a step, carried on, then the root,
        // epsilon, the division, the rate: gamma(7 t + 5) of the update at step t; the weight
        // decay's factor and product and the subtraction: 3 u of the weight.
        double b1 = (float) 0.9;
        double b2 = (float) 0.999;
        double[] bound = new double[3];
        for (int t = 1; t <= 3; t++) {
            try (ai.djl.training.GradientCollector c =
                    ai.djl.engine.Engine.getInstance().newGradientCollector()) {
                float[] g = new float[3];
                for (int i = 0; i < 3; i++) {
                    g[i] = (float) grads[t - 1][i];
                }
                c.backward(p.getArray().mul(manager.create(g)).sum());
            }
            adam.step(0.1, 1.0);
            for (int i = 0; i < 3; i++) {
                double g = (float) grads[t - 1][i];
                m[i] = b1 * m[i] + (1 - b1) * g;
                v[i] = b2 * v[i] + (1 - b2) * g * g;
                w[i] *= 1 - 0.1 * 0.01;
                double update =
                        0.1
                                * (m[i] / (1 - Math.pow(b1, t)))
                                / (Math.sqrt(v[i] / (1 - Math.pow(b2, t))) + 1e-8);
                w[i] -= update;
                bound[i] += 3 * U * Math.abs(w[i]) + gamma(7 * t + 5) * Math.abs(update);
            }
        }
        assertWithin(w, p.getArray().toFloatArray(), bound, "AdamW against double precision");
        assertSameBits(
                new float[] {0, 0, 0},
                p.getArray().getGradient().toFloatArray(),
                "the gradients are zeroed: exact zeros written");
    }
}
