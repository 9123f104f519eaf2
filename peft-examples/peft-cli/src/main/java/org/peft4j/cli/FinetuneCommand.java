package org.peft4j.cli;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;

import org.peft4j.core.PeftModel;
import org.peft4j.core.io.AtomicDirectory;
import org.peft4j.train.data.Dataset;
import org.peft4j.train.data.Example;
import org.peft4j.train.data.ExampleEncoder;
import org.peft4j.train.data.TokenizedExample;
import org.peft4j.cli.demo.LoRADemo;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.train.FineTuneConfig;
import org.peft4j.train.FineTuner;
import org.peft4j.train.Schedule;
import org.peft4j.train.TrainableModel;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.lora.LoRAModel;
import org.peft4j.parallel.Parallelism;
import org.peft4j.parallel.comm.Communicator;
import org.peft4j.parallel.comm.Communicators;
import org.peft4j.prefix.PrefixConfig;
import org.peft4j.prefix.PrefixModelForCausalLM;

import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code peft4j finetune}: LoRA or prefix tuning of a Llama checkpoint on JSON Lines data, with the
 * seed's knobs. Without {@code --model} it runs the offline demo ({@link LoRADemo}).
 */
@Command(
        name = "finetune",
        mixinStandardHelpOptions = true,
        description = {
            "Fine-tune a Llama with LoRA or prefix tuning.",
            "Without --model: an offline demo that pretrains a small Llama and teaches it a new"
                    + " task with LoRA."
        })
public final class FinetuneCommand implements Callable<Integer> {

    /** The seed's LoRA targets: every projection of a Llama layer. */
    static final String SEED_TARGETS =
            ".*q_proj.*,.*v_proj.*,.*k_proj.*,.*gate_proj.*,.*up_proj.*,.*o_proj.*,.*down_proj.*";

    @Option(
            names = "--method",
            description = "lora or prefix (default: ${DEFAULT-VALUE}).",
            defaultValue = "lora")
    String method;

    // An optional group around the shared options: --model is required in the group, the group
    // is not, so that without --model (and --tokenizer) the command runs the demo.
    @ArgGroup(exclusive = false, multiplicity = "0..1")
    ModelOptions model;

    @Mixin DeviceOption device;

    @Mixin DataOptions data;

    @Spec CommandSpec spec;

    @Option(
            names = "--train",
            description =
                    "Training data, JSON Lines: {src, tgt}, Alpaca, or conversations ({messages} or"
                            + " ShareGPT's {conversations}, rendered by the model's chat"
                            + " template).")
    Path train;

    @Option(names = "--dev", description = "Evaluation data, JSON Lines.")
    Path dev;

    @Option(
            names = "--output",
            description =
                    "Output directory: new or empty, or the run that --resume continues (default:"
                            + " ${DEFAULT-VALUE}).",
            defaultValue = "target/peft4j-finetune")
    Path output;

    @Option(
            names = "--overwrite",
            description =
                    "Replace a non-empty --output: its contents are deleted when training starts.")
    boolean overwrite;

    @Option(
            names = "--lora-rank",
            converter = Ranges.AtLeast1.class,
            description = "LoRA rank r (default: ${DEFAULT-VALUE}).",
            defaultValue = "8")
    int loraRank;

    @Option(
            names = "--lora-alpha",
            converter = Ranges.Positive.class,
            description = "LoRA alpha (default: ${DEFAULT-VALUE}).",
            defaultValue = "16")
    double loraAlpha;

    @Option(
            names = "--lora-dropout",
            converter = Ranges.Dropout.class,
            description = "LoRA dropout (default: ${DEFAULT-VALUE}).",
            defaultValue = "0")
    double loraDropout;

    @Option(
            names = "--target-modules",
            description = "Comma-separated LoRA targets (default: the seed's seven regexes).",
            defaultValue = SEED_TARGETS)
    String targetModules;

    @Option(names = "--rslora", description = "Rank-stabilised LoRA scaling alpha / sqrt(r).")
    boolean rslora;

    @Option(
            names = "--num-prefix-tokens",
            converter = Ranges.AtLeast1.class,
            description = "Prefix tokens (default: ${DEFAULT-VALUE}).",
            defaultValue = "16")
    int numPrefixTokens;

    @Option(
            names = "--prefix-projection",
            description = "Put the prefix through Linear-Tanh-Linear.")
    boolean prefixProjection;

    @Option(
            names = "--prefix-projection-hidden-size",
            converter = Ranges.AtLeast1.class,
            description = "The projection's inner width (default: ${DEFAULT-VALUE}).",
            defaultValue = "256")
    int prefixProjectionHiddenSize;

    @Option(
            names = "--learning-rate",
            converter = Ranges.Positive.class,
            description = "Peak learning rate (default: 3e-4 for LoRA, 3e-2 for prefix).")
    Double learningRate;

    @Option(
            names = "--epochs",
            converter = Ranges.AtLeast0.class,
            description = "Passes over the data (default: ${DEFAULT-VALUE}).",
            defaultValue = "3")
    int epochs;

    @Option(
            names = "--max-steps",
            converter = Ranges.AtLeast0.class,
            description = "Steps; overrides --epochs (default: off).",
            defaultValue = "0")
    int maxSteps;

    @Option(
            names = "--batch-size",
            converter = Ranges.AtLeast1.class,
            description = "Examples per forward pass (default: ${DEFAULT-VALUE}).",
            defaultValue = "8")
    int batchSize;

    @Option(
            names = "--gradient-accumulation-steps",
            converter = Ranges.AtLeast1.class,
            description = "Micro-batches per update (default: ${DEFAULT-VALUE}).",
            defaultValue = "1")
    int accumulation;

    @Option(
            names = "--warmup-steps",
            converter = Ranges.AtLeast0.class,
            description = "Warmup steps (default: ${DEFAULT-VALUE}).",
            defaultValue = "0")
    int warmupSteps;

    @Option(
            names = "--lr-scheduler",
            converter = Ranges.ScheduleChoice.class,
            description = "linear, cosine or constant (default: ${DEFAULT-VALUE}).",
            defaultValue = "linear")
    Schedule.Kind scheduler;

    @Option(
            names = "--max-grad-norm",
            converter = Ranges.NonNegative.class,
            description = "Global gradient-norm clip; 0 is off (default: ${DEFAULT-VALUE}).",
            defaultValue = "1.0")
    double maxGradNorm;

    @Option(
            names = "--weight-decay",
            converter = Ranges.NonNegative.class,
            description = "AdamW weight decay (default: ${DEFAULT-VALUE}).",
            defaultValue = "0")
    double weightDecay;

    @Option(
            names = "--eval-steps",
            converter = Ranges.AtLeast0.class,
            description = "Evaluate every N steps; 0: at the end (default: ${DEFAULT-VALUE}).",
            defaultValue = "0")
    int evalSteps;

    @Option(
            names = "--save-steps",
            converter = Ranges.AtLeast0.class,
            description = "Checkpoint every N steps; 0: none (default: ${DEFAULT-VALUE}).",
            defaultValue = "0")
    int saveSteps;

    @Option(
            names = "--logging-steps",
            converter = Ranges.AtLeast1.class,
            description = "Log every N steps (default: ${DEFAULT-VALUE}).",
            defaultValue = "10")
    int loggingSteps;

    @Option(
            names = "--seed",
            description =
                    "Seed of shuffling, initialisation and dropout (default: ${DEFAULT-VALUE}).",
            defaultValue = "42")
    long seed;

    @Option(
            names = "--resume",
            arity = "0..1",
            fallbackValue = "",
            description =
                    "Continue from a checkpoint (a checkpoint-N directory; alone: the newest in"
                            + " --output).")
    String resume;

    @Option(
            names = "--tensor-parallel-degree",
            converter = Ranges.AtLeast1.class,
            description =
                    "Split the model across this many of the processes mpirun started; the rest"
                            + " train data-parallel (default: ${DEFAULT-VALUE}).",
            defaultValue = "1")
    int tensorParallelDegree;

    /** Creates the command; picocli calls this. */
    public FinetuneCommand() {}

    /** {@inheritDoc} */
    @Override
    public Integer call() throws Exception {
        if (!"lora".equals(method) && !"prefix".equals(method)) {
            throw new IllegalArgumentException(
                    "--method must be lora or prefix, got \"" + method + '"');
        }
        Device on = device.resolve(); // before any data is read or any weight made
        if (model == null) {
            Path dir =
                    output.equals(Paths.get("target/peft4j-finetune"))
                            ? Paths.get("target/peft4j-demo")
                            : output;
            OutputDirectory.create(dir); // the demo writes its own files over its last run's
            LoRADemo.Result result = new LoRADemo(System.out, System.err).run(dir, seed, on);
            System.out.printf(
                    Locale.ROOT,
                    "try it: java -jar peft-examples/peft-cli/target/peft4j.jar generate --model %s"
                            + " --adapter %s --prompt \"upper: sQuArE >\"%s%n",
                    result.baseModel(),
                    result.adapter(),
                    on.isGpu() ? " --device " + device.name() : "");
            return result.after() >= 0.9 && result.before() <= 0.1 ? 0 : 1;
        }
        if (train == null) {
            throw new IllegalArgumentException("--train is required with --model");
        }
        if (epochs == 0 && maxSteps == 0) {
            throw new ParameterException(
                    spec.commandLine(), "--epochs 0 needs --max-steps above 0: set one of them");
        }
        Path resumeFrom = resume == null ? null : resume.isEmpty() ? output : Paths.get(resume);
        checkOutput(resumeFrom);
        // the data first: a malformed line fails in a moment, before any weight is read
        List<Example> trainExamples = data.read(train);
        List<Example> devExamples = dev == null ? List.of() : data.read(dev);
        Communicator world = Communicators.fromEnvironment();
        try (Parallelism layout = Parallelism.of(world, tensorParallelDegree);
                NDManager manager = NDManager.newBaseManager(on);
                LlamaTokenizer tokens = model.openTokenizer()) {
            LlamaForCausalLM llama = model.load(manager, layout.getTensorParallel(), false);
            Path checkpoint = resumeFrom == null ? null : FineTuner.latestCheckpoint(resumeFrom);
            ai.djl.engine.Engine.getInstance().setRandomSeed((int) seed);
            PeftModel adapted =
                    checkpoint != null ? PeftModel.fromPretrained(llama, checkpoint) : adapt(llama);
            // the lengths against the adapted model: a prefix takes positions of the context
            List<Example> all = new ArrayList<>(trainExamples);
            all.addAll(devExamples);
            ExampleEncoder encoder =
                    data.encoder(
                            tokens, adapted, llama, model.path(), model.tokenizerDirectory(), all);
            Dataset dataset = new Dataset(data.encode(encoder, trainExamples, train), seed);
            List<TokenizedExample> evaluation =
                    dev == null ? List.of() : data.encode(encoder, devExamples, dev);
            FineTuneConfig config =
                    FineTuneConfig.builder()
                            .optLearningRate(
                                    learningRate != null
                                            ? learningRate
                                            : "prefix".equals(method) ? 3e-2 : 3e-4)
                            .optEpochs(epochs)
                            .optMaxSteps(maxSteps)
                            .optBatchSize(batchSize)
                            .optGradientAccumulationSteps(accumulation)
                            .optWarmupSteps(warmupSteps)
                            .optSchedule(scheduler)
                            .optMaxGradNorm(maxGradNorm)
                            .optWeightDecay(weightDecay)
                            .optEvalSteps(evalSteps)
                            .optSaveSteps(saveSteps)
                            .optLoggingSteps(loggingSteps)
                            .optSeed(seed)
                            .build();
            if (overwrite) {
                // only now that data and model have loaded; every rank has checked the output
                layout.getWorld().barrier();
                if (layout.isLeader()) {
                    AtomicDirectory.delete(output);
                }
            }
            FineTuner.Result result =
                    new FineTuner(
                                    TrainableModel.of(adapted),
                                    config,
                                    dataset,
                                    evaluation,
                                    output,
                                    manager,
                                    System.err,
                                    layout)
                            .run(checkpoint);
            if (!layout.isLeader()) {
                return 0;
            }
            System.out.printf(
                    Locale.ROOT,
                    "trained %d steps, last loss %.4f%s; adapter in %s%n",
                    result.steps(),
                    result.lastLoss(),
                    result.eval() == null ? "" : "; eval " + result.eval(),
                    output);
        }
        return 0;
    }

    /**
     * Before anything is read: the output may not hold an input, and a non-empty one only when
     * {@code --overwrite} is given or {@code --resume} continues the run it holds.
     */
    private void checkOutput(Path resumeFrom) throws IOException {
        boolean ownRun = resumeFrom != null && OutputDirectory.isWithin(resumeFrom, output);
        if (ownRun && overwrite) {
            throw new IllegalArgumentException(
                    "--overwrite would delete the run that --resume continues in "
                            + output
                            + "; give one of them");
        }
        Map<String, Path> inputs = new LinkedHashMap<>();
        inputs.put("--model", model.path());
        inputs.put("--tokenizer", model.tokenizer());
        inputs.put("--train", train);
        inputs.put("--dev", dev);
        inputs.put("--resume", ownRun ? null : resumeFrom);
        OutputDirectory.checkApart(output, inputs);
        if (!overwrite && !ownRun) {
            OutputDirectory.checkEmpty(
                    output,
                    "--overwrite to replace it (its contents are deleted when training starts),"
                            + " --resume to continue the run it holds");
        }
        OutputDirectory.checkCreatable(output);
    }

    private PeftModel adapt(LlamaForCausalLM llama) throws IOException {
        switch (method) {
            case "lora":
                return new LoRAModel(
                        llama,
                        LoRAConfig.builder()
                                .setTargetModules(List.of(targetModules.split(",")))
                                .optR(loraRank)
                                .optLoraAlpha(loraAlpha)
                                .optLoraDropout(loraDropout)
                                .optUseRslora(rslora)
                                .optTensorParallelDegree(llama.getShardGroup().getDegree())
                                .optBaseModelNameOrPath(model.path().toString())
                                .optTaskType("CAUSAL_LM")
                                .build());
            case "prefix":
                if (numPrefixTokens > llama.getMaxPositions() - 2) {
                    throw new IllegalArgumentException(
                            "--num-prefix-tokens "
                                    + numPrefixTokens
                                    + " leaves no room for an example: "
                                    + model.path()
                                    + " has "
                                    + llama.getMaxPositions()
                                    + " positions (max_position_embeddings), and the prefix takes"
                                    + " the first of them; use at most "
                                    + (llama.getMaxPositions() - 2));
                }
                PrefixConfig.Builder prefix =
                        PrefixConfig.builder()
                                .fromModel(llama)
                                .setNumPrefixTokens(numPrefixTokens)
                                .optBaseModelNameOrPath(model.path().toString())
                                .optTaskType("CAUSAL_LM");
                if (prefixProjection) {
                    prefix.optPrefixProjection(prefixProjectionHiddenSize);
                }
                return new PrefixModelForCausalLM(llama, prefix.build());
            default:
                throw new IllegalArgumentException(
                        "--method must be lora or prefix, got \"" + method + '"');
        }
    }
}
