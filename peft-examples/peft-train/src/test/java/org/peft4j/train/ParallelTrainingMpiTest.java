package org.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertAllClose;
import static org.peft4j.core.testing.ArrayAssertions.floats;
import static org.peft4j.core.testing.ArrayAssertions.gamma;
import static org.peft4j.core.testing.ArrayAssertions.maxAbs;
import static org.peft4j.core.testing.ArrayAssertions.maxAbsDiff;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.peft4j.core.PeftModel;
import org.peft4j.core.io.NativeArrays;
import org.peft4j.core.io.SafetensorsReader;
import org.peft4j.core.parallel.Sharding;
import org.peft4j.core.parallel.Shardings;
import org.peft4j.train.data.TokenizedExample;
import org.peft4j.models.llama.ParityBounds;
import org.peft4j.models.llama.LlamaConfig;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.llama.weights.LlamaCheckpoints;
import org.peft4j.train.AdamW;
import org.peft4j.train.Evaluator;
import org.peft4j.train.Metrics;
import org.peft4j.train.TrainableModel;
import org.peft4j.train.TrainingStep;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.lora.LoRALinear;
import org.peft4j.lora.LoRAModel;
import org.peft4j.parallel.Parallelism;
import org.peft4j.parallel.comm.Communicator;
import org.peft4j.parallel.comm.MpiCommunicator;
import org.peft4j.parallel.testing.RandomArrays;
import org.peft4j.parallel.testing.SharedDirectory;
import org.peft4j.prefix.PrefixConfig;
import org.peft4j.prefix.PrefixModelForCausalLM;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Parallel LoRA training on two ranks against one process on the same data and initial adapter: the
 * loss and every gradient at the first step, where both start from the same parameters and differ
 * by float32 rounding only ({@code gamma_n}, {@link ParityBounds}), and the adapter after 20 AdamW
 * steps, within what AdamW makes of that rounding ({@link ParityBounds#adamElementBound}, {@link
 * ParityBounds#adamRmsBound}).
 */
@Tag("mpi")
class ParallelTrainingMpiTest {

    private static final int STEPS = 20;
    private static final double LEARNING_RATE = 5e-3;

    /** The random model's sizes. */
    private static final LlamaConfig TINY =
            LlamaConfig.builder().setSizes(32, 88, 2, 4, 2, 64).build();

    /** The longest example of {@link #globalBatch}. */
    private static final int POSITIONS = 13;

    /** The chain of sums behind a token's loss, with rank-4 LoRA. */
    private static final int LOSS_TERMS = ParityBounds.lossTerms(TINY, POSITIONS, 4);

    /** The chain behind one gradient element over the global batch, by adapter kind. */
    private static final int LORA_GRADIENT_TERMS =
            ParityBounds.gradientTerms(TINY, POSITIONS, 4, 8 * POSITIONS);

    /** With a prefix of 3, and its encoder (32 to 16 to the keys and values) both ways. */
    private static final int PREFIX_GRADIENT_TERMS =
            ParityBounds.gradientTerms(TINY, POSITIONS + 3, 0, 8 * POSITIONS) + 2 * (32 + 16);

    private final Communicator world = MpiCommunicator.world();
    private NDManager manager;

    @BeforeEach
    void open() {
        assertEquals(2, world.getWorldSize(), "run with mpirun -np 2");
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void close() {
        manager.close();
    }

    /** Eight examples of 6 to 13 tokens, the first two prompt tokens not trained on. */
    private static List<TokenizedExample> globalBatch() {
        Random random = new Random(5);
        List<TokenizedExample> examples = new ArrayList<>();
        for (int e = 0; e < 8; e++) {
            int length = 6 + random.nextInt(8);
            int[] ids = new int[length];
            int[] labels = new int[length];
            for (int t = 0; t < length; t++) {
                ids[t] = 1 + random.nextInt(63);
                labels[t] = t < 2 ? -100 : ids[t];
            }
            examples.add(new TokenizedExample(ids, labels));
        }
        return examples;
    }

    private static long targets(List<TokenizedExample> examples) {
        return examples.stream().mapToLong(TokenizedExample::countTargets).sum();
    }

    /** How an adapter kind is created, saved and loaded. */
    private interface Adapter {
        /** Wraps the model with a new adapter (random where it would start at zero). */
        PeftModel create(LlamaForCausalLM llama);

        /** Wraps the model with a saved adapter. */
        PeftModel load(LlamaForCausalLM llama, Path dir) throws IOException;

        /** The chain of sums behind one gradient element. */
        int gradientTerms();
    }

    private final Adapter lora =
            new Adapter() {
                @Override
                public PeftModel create(LlamaForCausalLM llama) {
                    LoRAModel model =
                            new LoRAModel(
                                    llama,
                                    LoRAConfig.builder()
                                            .setTargetModules(".*_proj")
                                            .optR(4)
                                            .optLoraAlpha(8)
                                            .build());
                    long seed = 40;
                    for (LoRALinear layer : model.getLoRALayers().values()) {
                        NDArray b = layer.getLoraB().getArray();
                        NativeArrays.copyInto(
                                b,
                                RandomArrays.gaussian(
                                        manager, seed++, 0.05, b.getShape().getShape()));
                    }
                    return model;
                }

                @Override
                public PeftModel load(LlamaForCausalLM llama, Path dir) throws IOException {
                    return LoRAModel.fromPretrained(llama, dir);
                }

                @Override
                public int gradientTerms() {
                    return LORA_GRADIENT_TERMS;
                }

                @Override
                public String toString() {
                    return "LoRA";
                }
            };

    private final Adapter prefix =
            new Adapter() {
                @Override
                public PeftModel create(LlamaForCausalLM llama) {
                    return new PrefixModelForCausalLM(
                            llama,
                            PrefixConfig.builder()
                                    .fromModel(llama)
                                    .setNumPrefixTokens(3)
                                    .optPrefixProjection(16)
                                    .build());
                }

                @Override
                public PeftModel load(LlamaForCausalLM llama, Path dir) throws IOException {
                    return PrefixModelForCausalLM.fromPretrained(llama, dir);
                }

                @Override
                public int gradientTerms() {
                    return PREFIX_GRADIENT_TERMS;
                }

                @Override
                public String toString() {
                    return "prefix";
                }
            };

    /** A random tiny Llama and a new adapter, written by rank 0. */
    private Path[] checkpoint(Path dir, Adapter adapter) throws IOException {
        Path model = dir.resolve("model");
        Path adapterDir = dir.resolve("adapter");
        if (world.getRank() == 0) {
            LlamaForCausalLM llama = LlamaForCausalLM.random(TINY, manager, 3);
            LlamaCheckpoints.save(llama, model);
            adapter.create(llama).savePretrained(adapterDir);
        }
        world.barrier();
        return new Path[] {model, adapterDir};
    }

    /** The whole gradient of every trainable parameter, gathered where split. */
    private Map<String, NDArray> gradients(TrainableModel model) {
        Map<String, Parameter> trainable = model.trainableParameters();
        Map<String, Sharding> shardings = Shardings.of(model.block(), trainable);
        Map<String, NDArray> out = new LinkedHashMap<>();
        trainable.forEach(
                (name, p) -> {
                    NDArray g = p.getArray().getGradient();
                    Sharding sharding = shardings.get(name);
                    out.put(name, sharding == null ? g.duplicate() : sharding.gather(g));
                });
        return out;
    }

    /**
     * Trains the single-process model and the parallel one side by side and compares them.
     *
     * @param tensorParallel the degree of the parallel run (2: tensor parallel; 1: data parallel)
     */
    private void compare(int tensorParallel, Adapter adapter) throws Exception {
        double lossDiff = 0;
        double gradientDiff = 0;
        double trainedDiff = 0;
        double trainedRms = 0;
        double elementBound = 0;
        double rmsBound = 0;
        double evalDiff = 0;
        try (SharedDirectory dir = SharedDirectory.create(world, manager);
                Parallelism layout = Parallelism.of(world, tensorParallel)) {
            Path[] files = checkpoint(dir.path(), adapter);
            PeftModel single =
                    adapter.load(LlamaForCausalLM.fromPretrained(files[0], manager), files[1]);
            PeftModel parallel =
                    adapter.load(
                            LlamaForCausalLM.fromPretrained(
                                    files[0], manager, layout.getTensorParallel(), false),
                            files[1]);
            TrainableModel singleModel = TrainableModel.of(single);
            TrainableModel parallelModel = TrainableModel.of(parallel);
            List<TokenizedExample> all = globalBatch();
            // data parallel: each rank trains on its half of the batch
            List<TokenizedExample> mine =
                    tensorParallel == 2
                            ? all
                            : all.subList(4 * world.getRank(), 4 * world.getRank() + 4);
            try (AdamW singleOptimizer =
                            new AdamW(singleModel.trainableParameters(), 0.9, 0.999, 1e-8, 0);
                    AdamW parallelOptimizer =
                            new AdamW(parallelModel.trainableParameters(), 0.9, 0.999, 1e-8, 0)) {
                TrainingStep singleStep =
                        new TrainingStep(singleModel, singleOptimizer, 1.0, manager, false);
                TrainingStep parallelStep =
                        new TrainingStep(
                                parallelModel, parallelOptimizer, 1.0, manager, false, layout);
                // two micro-batches, so that accumulation crosses the segment-wise backward too
                List<List<TokenizedExample>> singleBatches =
                        List.of(all.subList(0, 4), all.subList(4, 8));
                List<List<TokenizedExample>> parallelBatches =
                        List.of(
                                mine.subList(0, mine.size() / 2),
                                mine.subList(mine.size() / 2, mine.size()));

                // evaluation: each data-parallel replica evaluates its share (batches of 3, so
                // that the shares' batches are not the single process's), the sums are reduced
                Metrics singleEval = Evaluator.evaluate(singleModel.block(), all, 3, manager);
                Metrics parallelEval =
                        Evaluator.evaluate(
                                parallelModel.block(), all, 3, manager, layout.getDataParallel());
                assertEquals(singleEval.tokens(), parallelEval.tokens(), "evaluated tokens");
                // the mean of token losses, each a log-sum-exp of logits of the loss's size
                assertEquals(
                        singleEval.loss(),
                        parallelEval.loss(),
                        gamma(LOSS_TERMS) * singleEval.loss(),
                        "eval loss within gamma_n");
                assertEquals(
                        singleEval.accuracy(),
                        parallelEval.accuracy(),
                        1.0 / singleEval.tokens() + 1e-12, // one near-tie may flip
                        "eval accuracy");
                evalDiff = Math.abs(singleEval.loss() - parallelEval.loss()) / singleEval.loss();

                TrainingStep.Outcome expected = singleStep.gradients(singleBatches, targets(all));
                TrainingStep.Outcome actual =
                        parallelStep.gradients(parallelBatches, targets(mine));
                // the first step starts from the same parameters: rounding only
                int terms = adapter.gradientTerms();
                assertEquals(
                        expected.lossSum(),
                        actual.lossSum(),
                        gamma(LOSS_TERMS) * Math.abs(expected.lossSum()),
                        "loss at the first step, within gamma_n");
                assertEquals(
                        expected.gradNorm(),
                        actual.gradNorm(),
                        gamma(terms) * expected.gradNorm(),
                        "gradient norm at the first step, within gamma_n");
                Map<String, NDArray> singleGradients = gradients(singleModel);
                Map<String, NDArray> parallelGradients = gradients(parallelModel);
                assertEquals(singleGradients.keySet(), parallelGradients.keySet());
                for (String name : singleGradients.keySet()) {
                    // an element's error follows the terms summed into it, of the size of the
                    // tensor's largest gradients, not its own value (a sum near zero cancelled)
                    NDArray g = singleGradients.get(name);
                    double scale = maxAbs(g);
                    assertAllClose(
                            g,
                            parallelGradients.get(name),
                            gamma(terms),
                            gamma(terms) * scale,
                            adapter + " gradient of " + name + ", within gamma_n max |g|");
                    if (scale > 0) {
                        gradientDiff =
                                Math.max(
                                        gradientDiff,
                                        maxAbsDiff(g, parallelGradients.get(name)) / scale);
                    }
                }
                lossDiff =
                        Math.abs(expected.lossSum() - actual.lossSum())
                                / Math.abs(expected.lossSum());
                singleStep.apply(expected, LEARNING_RATE);
                parallelStep.apply(actual, LEARNING_RATE);

                for (int step = 1; step < STEPS; step++) {
                    singleStep.run(singleBatches, targets(all), LEARNING_RATE);
                    parallelStep.run(parallelBatches, targets(mine), LEARNING_RATE);
                }
            }
            Path singleOut = dir.path().resolve("single-trained");
            Path parallelOut = dir.path().resolve("parallel-trained");
            if (world.getRank() == 0) {
                single.savePretrained(singleOut);
            }
            world.barrier();
            if (layout.getDataParallel().getRank() == 0) {
                parallel.savePretrained(parallelOut); // merged over the tensor-parallel group
            }
            world.barrier();
            // Adam turns rounding into up to a step of the rate where a gradient is at the
            // rounding level: bounds per element and on the whole, not a fixed tolerance
            double[] rates = new double[STEPS];
            java.util.Arrays.fill(rates, LEARNING_RATE);
            elementBound = ParityBounds.adamElementBound(rates);
            rmsBound = ParityBounds.adamRmsBound(rates, adapter.gradientTerms());
            Trained trained = new Trained(elementBound);
            for (String file :
                    new String[] {PeftModel.WEIGHTS_FILE, "prefix_encoder.safetensors"}) {
                if (Files.exists(singleOut.resolve(file))) {
                    assertTrainedAlike(
                            files[1].resolve(file),
                            singleOut.resolve(file),
                            parallelOut.resolve(file),
                            trained,
                            adapter);
                }
            }
            trainedDiff = trained.worst;
            trainedRms = Math.sqrt(trained.squares / trained.count);
            assertTrue(
                    trainedRms <= rmsBound,
                    String.format(
                            java.util.Locale.ROOT,
                            "%s: root mean square difference of the trained tensors %.3e over 2"
                                    + " sqrt(rho) sum_t sqrt(B_t) lr_t = %.3e",
                            adapter,
                            trainedRms,
                            rmsBound));
        }
        if (world.getRank() == 0) {
            // the measured agreement, for the record (docs/parallel.md quotes it)
            System.out.printf(
                    java.util.Locale.ROOT,
                    "PARITY %s tensor-parallel %d: loss rel. diff %.1e, max gradient diff %.1e of"
                            + " its tensor's largest (tolerance %.1e); after %d steps max adapter"
                            + " diff %.1e (bound %.1e), rms %.1e (bound %.1e); eval loss rel."
                            + " diff %.1e%n",
                    adapter,
                    tensorParallel,
                    lossDiff,
                    gradientDiff,
                    gamma(adapter.gradientTerms()),
                    STEPS,
                    trainedDiff,
                    elementBound,
                    trainedRms,
                    rmsBound,
                    evalDiff);
        }
    }

    /** The differences of the trained tensors, summed over the files of an adapter. */
    private static final class Trained {
        final double bound;
        double worst;
        double squares;
        long count;

        Trained(double bound) {
            this.bound = bound;
        }
    }

    /**
     * Asserts that every tensor of the parallel run is within the bound per element of the single
     * run's, and that training moved them; adds the differences to {@code trained}.
     */
    private void assertTrainedAlike(
            Path start, Path single, Path parallel, Trained trained, Adapter adapter)
            throws IOException {
        try (SafetensorsReader initial = SafetensorsReader.open(start);
                SafetensorsReader a = SafetensorsReader.open(single);
                SafetensorsReader b = SafetensorsReader.open(parallel)) {
            assertEquals(a.getTensors().keySet(), b.getTensors().keySet());
            double moved = 0;
            for (String key : a.getTensors().keySet()) {
                float[] x = floats(a.read(key, manager));
                float[] y = floats(b.read(key, manager));
                assertAllClose(
                        x,
                        y,
                        0,
                        trained.bound,
                        adapter
                                + " "
                                + key
                                + " after "
                                + STEPS
                                + " steps, within 2 sum_t B_t lr_t");
                for (int i = 0; i < x.length; i++) {
                    double d = (double) x[i] - y[i];
                    trained.squares += d * d;
                    trained.worst = Math.max(trained.worst, Math.abs(d));
                }
                trained.count += x.length;
                moved = Math.max(moved, maxAbsDiff(floats(initial.read(key, manager)), x));
            }
            assertTrue(moved > 1e-3, single + " moved during training: " + moved);
        }
    }

    @Test
    void tensorParallelLoRATrainingMatchesOneProcess() throws Exception {
        compare(2, lora);
    }

    @Test
    void dataParallelLoRATrainingMatchesOneProcess() throws Exception {
        compare(1, lora);
    }

    @Test
    void tensorParallelPrefixTrainingMatchesOneProcess() throws Exception {
        compare(2, prefix);
    }
}
