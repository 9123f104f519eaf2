package org.peft4j.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.lm.CausalLanguageModel;
import org.peft4j.core.parallel.Sharding;
import org.peft4j.core.parallel.Shardings;
import org.peft4j.train.data.Dataset;
import org.peft4j.train.data.TokenizedExample;
import org.peft4j.parallel.Parallelism;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Trains an adapter (or a whole model): each step is a {@link TrainingStep} over {@code
 * gradientAccumulationSteps} micro-batches at the {@link Schedule}'s rate, whose arrays are all
 * freed when it ends, so memory stays flat over a long run. Dropout draws from a seed derived from
 * the run's seed and the step, and the data order of each epoch from the run's seed, so a run
 * resumed from a checkpoint computes what the uninterrupted run would.
 *
 * <p>The output directory gets the final adapter, {@code metrics.csv}, {@code loss.svg}, {@code
 * train_results.json}, and the newest {@code checkpoint-<step>} directories (adapter, {@code
 * optimizer.safetensors}, {@code trainer_state.json}), each checkpoint and the adapter written all
 * or nothing ({@link RunDirectory}).
 */
public final class FineTuner {

    private static final Logger logger = LoggerFactory.getLogger(FineTuner.class);
    private static final String OPTIMIZER_FILE = "optimizer.safetensors";

    private final TrainableModel model;
    private final FineTuneConfig config;
    private final Dataset train;
    private final List<TokenizedExample> dev;
    private final Path output;
    private final NDManager manager;
    private final PrintStream progress;
    private final Parallelism layout;
    private final boolean leader;

    /**
     * Creates a fine-tuner.
     *
     * @param model what to train: an adapter, or a whole model
     * @param config the run's settings
     * @param train the training data
     * @param dev the evaluation data, or an empty list
     * @param output the output directory
     * @param manager the manager under which step arrays live, on the model's device
     * @param progress where the progress bar goes (standard error)
     * @throws IllegalArgumentException if an example is longer than the model's context
     */
    public FineTuner(
            TrainableModel model,
            FineTuneConfig config,
            Dataset train,
            List<TokenizedExample> dev,
            Path output,
            NDManager manager,
            PrintStream progress) {
        this(model, config, train, dev, output, manager, progress, Parallelism.single());
    }

    /**
     * Creates a fine-tuner for one rank of a parallel run: every rank runs it on the same data and
     * settings; each data-parallel rank trains on its share of every batch, world rank 0 logs and
     * writes the files, and adapters and optimizer state are saved merged (the files of a
     * single-process run), so a run can resume with another layout.
     *
     * @param model this rank's model, split as {@code layout}'s tensor-parallel group says
     * @param config the run's settings; the batch size is the global one
     * @param train the training data, the same on every rank
     * @param dev the evaluation data, or an empty list
     * @param output the output directory, shared by the ranks
     * @param manager the manager under which step arrays live, on the model's device
     * @param progress where rank 0's progress bar goes
     * @param layout the run's tensor- and data-parallel groups
     * @throws IllegalArgumentException if an example is longer than the model's context ({@link
     *     CausalLanguageModel#maxPositionsOf}); {@link
     *     org.peft4j.train.data.ExampleEncoder.Builder#fromModel} makes examples that fit
     */
    public FineTuner(
            TrainableModel model,
            FineTuneConfig config,
            Dataset train,
            List<TokenizedExample> dev,
            Path output,
            NDManager manager,
            PrintStream progress,
            Parallelism layout) {
        int context = CausalLanguageModel.maxPositionsOf(model.block());
        requireFits(train.examples(), "training", context);
        requireFits(dev, "evaluation", context);
        this.layout = layout;
        this.leader = layout.isLeader();
        this.model = model;
        this.config = config;
        this.train = train;
        this.dev = dev;
        this.output = output;
        this.manager = manager;
        this.progress = leader ? progress : new PrintStream(OutputStream.nullOutputStream());
    }

    /** Refuses data the model cannot run on, before the first step rather than at one of them. */
    private static void requireFits(List<TokenizedExample> examples, String kind, int context) {
        for (int i = 0; i < examples.size(); i++) {
            int length = examples.get(i).inputIds().length;
            if (length > context) {
                throw new IllegalArgumentException(
                        "the "
                                + kind
                                + " example at index "
                                + i
                                + " holds "
                                + length
                                + " tokens, more than the model's context of "
                                + context
                                + "; encode the data with ExampleEncoder.builder(tokenizer)"
                                + ".fromModel(model), which cuts or drops such examples");
            }
        }
    }

    /**
     * What a run measured.
     *
     * @param steps the steps done
     * @param lastLoss the training loss of the last step
     * @param eval the final evaluation, or {@code null} without dev data
     * @param tokensPerSecond the training throughput
     */
    public record Result(int steps, double lastLoss, Metrics eval, double tokensPerSecond) {}

    /**
     * Runs to the end.
     *
     * @param resumeFrom a checkpoint directory to continue from (its adapter must already be in the
     *     model), or {@code null} to start fresh
     * @return the result
     * @throws IOException if a checkpoint or the output cannot be written or read
     */
    public Result run(Path resumeFrom) throws IOException {
        if (leader) {
            RunDirectory.prepare(output); // what a killed run left is finished, undone or removed
        }
        int totalSteps = config.totalSteps(train.size());
        int perStep = config.getBatchSize() * config.getGradientAccumulationSteps();
        try (AdamW optimizer =
                new AdamW(
                        model.trainableParameters(),
                        0.9,
                        0.999,
                        config.getAdamEpsilon(),
                        config.getWeightDecay())) {
            return run(resumeFrom, optimizer, totalSteps, perStep);
        }
    }

    private Result run(Path resumeFrom, AdamW optimizer, int totalSteps, int perStep)
            throws IOException {
        TrainingState state = new TrainingState(0, 0, 0, 0, totalSteps, config.getSeed(), perStep);
        if (resumeFrom != null) {
            state = resume(resumeFrom, optimizer, state);
        }
        Schedule schedule =
                new Schedule(
                        config.getSchedule(),
                        config.getLearningRate(),
                        config.getWarmupSteps(),
                        totalSteps);
        MetricsLog log =
                leader ? new MetricsLog(output, resumeFrom == null ? -1 : state.step()) : null;
        ProgressBar bar =
                new ProgressBar(
                        progress,
                        state.step(),
                        totalSteps,
                        System.console() != null,
                        config.getLoggingSteps());
        if (leader) {
            logger.info(
                    "training {} examples, {} steps of {} examples, {}{}",
                    train.size(),
                    totalSteps,
                    perStep,
                    model.describe(),
                    layout.getWorld().getWorldSize() > 1 ? "; " + layout : "");
        }
        TrainingStep step =
                new TrainingStep(model, optimizer, config.getMaxGradNorm(), manager, true, layout);
        double windowLoss = 0;
        long windowCorrect = 0;
        long windowTargets = 0;
        long windowTokens = 0;
        long windowStart = System.nanoTime();
        long runStart = System.nanoTime();
        long runTokens = 0;
        double lastLoss = Double.NaN;
        Metrics eval = null;
        while (state.step() < totalSteps) {
            int done0 = state.step();
            double rate = schedule.rate(done0);
            Engine.getInstance().setRandomSeed((int) (config.getSeed() * 1_000_003L + done0));
            StepData data = collect(state);
            TrainingStep.Outcome outcome;
            try {
                outcome = step.run(data.microBatches(), data.localTargets(), rate);
            } catch (IllegalStateException e) {
                throw new IllegalStateException(
                        "step "
                                + (done0 + 1)
                                + ": "
                                + e.getMessage()
                                + " (now "
                                + config.getLearningRate()
                                + ")",
                        e);
            }
            double stepLoss = outcome.lossSum();
            double gradNorm = outcome.gradNorm();
            windowCorrect += outcome.correct();
            lastLoss = stepLoss / Math.max(1, data.targets()); // global loss over global targets
            windowLoss += stepLoss;
            windowTargets += data.targets();
            windowTokens += data.tokens();
            runTokens += data.tokens();
            state =
                    new TrainingState(
                            done0 + 1,
                            data.epoch(),
                            data.index(),
                            state.tokens() + data.tokens(),
                            totalSteps,
                            config.getSeed(),
                            perStep);
            int done = state.step();
            boolean last = done == totalSteps;
            boolean logNow = done % config.getLoggingSteps() == 0 || last;
            boolean evalNow =
                    !dev.isEmpty()
                            && (last
                                    || config.getEvalSteps() > 0
                                            && done % config.getEvalSteps() == 0);
            double seconds = (System.nanoTime() - windowStart) / 1e9;
            double throughput = windowTokens / Math.max(seconds, 1e-9);
            bar.update(done, lastLoss, throughput);
            if (evalNow) {
                // each data-parallel replica evaluates its share, its tensor-parallel ranks
                // together (the forward pass of a split model is a collective)
                eval =
                        Evaluator.evaluate(
                                model.block(),
                                dev,
                                config.getBatchSize(),
                                manager,
                                layout.getDataParallel());
                bar.breakLine();
                if (leader) {
                    logger.info("step {}: eval {}", done, eval);
                }
            }
            if (logNow || evalNow) {
                if (leader) {
                    Metrics window =
                            new Metrics(
                                    windowLoss / Math.max(1, windowTargets),
                                    (double) windowCorrect / Math.max(1, windowTargets),
                                    windowTargets);
                    double epoch = state.epoch() + (double) state.index() / train.size();
                    log.add(done, epoch, rate, window, gradNorm, throughput, evalNow ? eval : null);
                }
                windowLoss = 0;
                windowCorrect = 0;
                windowTargets = 0;
                windowTokens = 0;
                windowStart = System.nanoTime();
            }
            if (config.getSaveSteps() > 0 && done % config.getSaveSteps() == 0 && !last) {
                if (leader) {
                    log.flush();
                }
                checkpoint(state, optimizer);
            }
        }
        double tokensPerSecond = runTokens / Math.max((System.nanoTime() - runStart) / 1e9, 1e-9);
        if (writesAdapter()) {
            model.save(output);
        }
        if (leader) {
            log.flush();
            writeResults(state, lastLoss, eval, tokensPerSecond);
        }
        layout.getWorld().barrier();
        return new Result(state.step(), lastLoss, eval, tokensPerSecond);
    }

    /**
     * Returns whether this rank takes part in writing the adapter: the ranks of the first
     * data-parallel replica, whose tensor-parallel group saves merged (rank 0 writes).
     */
    private boolean writesAdapter() {
        return layout.getDataParallel().getRank() == 0;
    }

    /** The micro-batches of one step and the data position after them. */
    private record StepData(
            List<List<TokenizedExample>> microBatches,
            long localTargets,
            long targets,
            long tokens,
            int epoch,
            int index) {}

    private StepData collect(TrainingState state) {
        int epoch = state.epoch();
        int index = state.index();
        List<List<TokenizedExample>> micro = new ArrayList<>();
        long targets = 0;
        long localTargets = 0;
        long tokens = 0;
        int replicas = layout.getDataParallel().getWorldSize();
        int replica = layout.getDataParallel().getRank();
        for (int a = 0; a < config.getGradientAccumulationSteps(); a++) {
            if (index >= train.size()) {
                epoch++;
                index = 0;
            }
            List<TokenizedExample> slice = train.slice(epoch, index, config.getBatchSize());
            index += slice.size();
            // each data-parallel replica takes a contiguous share of the global micro-batch
            List<TokenizedExample> mine =
                    slice.subList(
                            slice.size() * replica / replicas,
                            slice.size() * (replica + 1) / replicas);
            for (TokenizedExample example : slice) {
                targets += predictedTargets(example);
                tokens += example.inputIds().length;
            }
            for (TokenizedExample example : mine) {
                localTargets += predictedTargets(example);
            }
            micro.add(mine);
        }
        return new StepData(micro, localTargets, targets, tokens, epoch, index);
    }

    /** The targets the shifted loss scores: a label on the first token has nothing before it. */
    private static long predictedTargets(TokenizedExample example) {
        return example.countTargets() - (example.labels()[0] >= 0 ? 1 : 0);
    }

    private TrainingState resume(Path checkpoint, AdamW optimizer, TrainingState fresh)
            throws IOException {
        TrainingState saved = TrainingState.read(checkpoint.resolve(TrainingState.FILE));
        if (saved.seed() != fresh.seed()
                || saved.examplesPerStep() != fresh.examplesPerStep()
                || saved.totalSteps() != fresh.totalSteps()) {
            throw new IllegalArgumentException(
                    checkpoint
                            + " was made with seed "
                            + saved.seed()
                            + ", "
                            + saved.examplesPerStep()
                            + " examples per step and "
                            + saved.totalSteps()
                            + " steps; this run has "
                            + fresh.seed()
                            + ", "
                            + fresh.examplesPerStep()
                            + " and "
                            + fresh.totalSteps()
                            + ": resume with the same settings and data");
        }
        optimizer.load(checkpoint.resolve(OPTIMIZER_FILE), shardings());
        if (leader) {
            logger.info("resuming from {} at step {}", checkpoint, saved.step());
        }
        return saved;
    }

    private void checkpoint(TrainingState state, AdamW optimizer) throws IOException {
        if (writesAdapter()) {
            RunDirectory.writeCheckpoint(
                    output,
                    state.step(),
                    layout.getTensorParallel(),
                    dir -> {
                        model.save(dir);
                        optimizer.save(dir.resolve(OPTIMIZER_FILE), shardings());
                        if (leader) {
                            state.write(dir.resolve(TrainingState.FILE));
                        }
                    });
        }
        layout.getWorld().barrier();
        if (leader) {
            RunDirectory.prune(output, config.getSaveTotalLimit());
        }
        layout.getWorld().barrier();
    }

    private Map<String, Sharding> shardings() {
        return Shardings.of(model.block(), model.trainableParameters());
    }

    /**
     * Finds the newest complete checkpoint of an output directory, after finishing or undoing
     * the saves a killed run interrupted there: a checkpoint is complete or absent, never half
     * written.
     *
     * @param output a run's output directory, or a checkpoint directory itself
     * @return the checkpoint directory
     * @throws IOException if there is none
     */
    public static Path latestCheckpoint(Path output) throws IOException {
        return RunDirectory.latestCheckpoint(output);
    }

    private void writeResults(
            TrainingState state, double lastLoss, Metrics eval, double tokensPerSecond)
            throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode node = json.createObjectNode();
        node.put("steps", state.step());
        node.put("tokens", state.tokens());
        node.put("train_loss", lastLoss);
        node.put("tokens_per_second", tokensPerSecond);
        if (eval != null) {
            node.put("eval_loss", eval.loss());
            node.put("eval_perplexity", eval.perplexity());
            node.put("eval_accuracy", eval.accuracy());
        }
        AtomicFiles.writeString(
                output.resolve("train_results.json"),
                json.writerWithDefaultPrettyPrinter().writeValueAsString(node));
        logger.info(
                String.format(
                        Locale.ROOT,
                        "done: %d steps, last loss %.4f, %.0f tokens/s; adapter in %s",
                        state.step(),
                        lastLoss,
                        tokensPerSecond,
                        output));
    }
}
