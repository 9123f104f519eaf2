package org.peft4j.cli.bench;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.peft4j.core.AdapterScope;
import org.peft4j.core.Devices;
import org.peft4j.core.PeftModel;
import org.peft4j.core.lm.CausalLMGenerator;
import org.peft4j.core.lm.GenerationConfig;
import org.peft4j.core.tree.BlockPaths;
import org.peft4j.train.data.TokenizedExample;
import org.peft4j.models.llama.LlamaConfig;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.train.AdamW;
import org.peft4j.train.TrainableModel;
import org.peft4j.train.TrainingStep;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.lora.LoRALinear;
import org.peft4j.lora.LoRAModel;
import org.peft4j.prefix.PrefixConfig;
import org.peft4j.prefix.PrefixModelForCausalLM;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.LongConsumer;

/**
 * Runs one benchmark mode and describes the result as a JSON object.
 *
 * <p>Steps are timed one by one after warm-up steps; the reported time is the median. Model FLOPs
 * per token count {@code 6} per trainable and {@code 4} per frozen matrix parameter (a frozen
 * weight needs no gradient of its own, only of its input), plus {@code 12 L H T} for attention;
 * matrix parameters are every Linear weight and the output projection (the tied embedding), not the
 * input embedding's lookup or the norms.
 */
public final class Benchmark {

    /** The modes, in the order {@code peft4j bench} runs them. */
    public static final List<String> MODES =
            List.of(
                    "gemm", "infer", "merged", "unmerged", "mixed", "lora", "full", "prefix",
                    "generate");

    /** Keys of every mode's line besides {@code mode} and {@code peak_rss_mb}; null where moot. */
    public static final List<String> EVERY_LINE =
            List.of("tokens_per_s", "ms_per_step", "trainable_params", "total_params");

    private static final long SEED = 1234;

    /** The adapters of the {@code mixed} mode, row {@code i} of the batch taking {@code i % 4}. */
    static final int MIXED_ADAPTERS = 4;
    private static final int GEMM_SIZE = 2048;
    private static final double GEMM_FLOPS = 2.0 * GEMM_SIZE * GEMM_SIZE * GEMM_SIZE;

    private final BenchConfig config;
    private final Device device;

    /** Pairs timed at least when a mode is compared with the base model in one JVM. */
    static final int COMPARED_PAIRS = 21;

    /**
     * Untimed pairs at least before those: the adapted pass runs more Java code than the base pass,
     * which the JIT compiler needs more passes to reach its steady speed on (with two, medium
     * unmerged measured 0.89-0.91 x base; with ten, 0.92-0.94).
     */
    static final int COMPARED_WARMUP = 10;

    /**
     * Untimed generations at least before the timed ones. A decode step makes about 460 engine
     * calls from Java, and until the JIT compiler has compiled that path (a few thousand steps) the
     * Java side adds up to a third to a token's time: on small, the first generations take 12-18 ms
     * per token and those after about 40 take 8.5-10.
     */
    static final int GENERATION_WARMUP = 40;

    private final int timedSteps;
    private final int warmupSteps;
    private final int longSteps;
    private final int generationWarmup;

    /**
     * Creates a benchmark on the CPU.
     *
     * @param config the model configuration
     * @param timedSteps timed steps, at least 5
     * @param warmupSteps untimed steps first
     * @param longSteps for the training modes: a long run of this many steps reporting resident
     *     memory after step 50 and at the end; 0 for none
     */
    public Benchmark(BenchConfig config, int timedSteps, int warmupSteps, int longSteps) {
        this(config, Device.cpu(), timedSteps, warmupSteps, longSteps);
    }

    /**
     * Creates a benchmark on a device.
     *
     * @param config the model configuration
     * @param device where the model and its inputs live; checked by the caller ({@link
     *     org.peft4j.core.Devices#require(Device)})
     * @param timedSteps timed steps, at least 5
     * @param warmupSteps untimed steps first
     * @param longSteps for the training modes: a long run of this many steps reporting resident
     *     memory after step 50 and at the end; 0 for none
     */
    public Benchmark(
            BenchConfig config, Device device, int timedSteps, int warmupSteps, int longSteps) {
        this(config, device, timedSteps, warmupSteps, longSteps, GENERATION_WARMUP);
    }

    /** On the CPU, with the generations' least warm-up given (for quick tests). */
    Benchmark(
            BenchConfig config,
            int timedSteps,
            int warmupSteps,
            int longSteps,
            int generationWarmup) {
        this(config, Device.cpu(), timedSteps, warmupSteps, longSteps, generationWarmup);
    }

    private Benchmark(
            BenchConfig config,
            Device device,
            int timedSteps,
            int warmupSteps,
            int longSteps,
            int generationWarmup) {
        if (timedSteps < 5) {
            throw new IllegalArgumentException("time at least 5 steps, got " + timedSteps);
        }
        this.config = config;
        this.device = device;
        this.timedSteps = timedSteps;
        this.warmupSteps = warmupSteps;
        this.longSteps = longSteps;
        this.generationWarmup = generationWarmup;
    }

    /**
     * Runs a mode.
     *
     * @param mode one of {@link #MODES}
     * @return the JSON line's object
     * @throws IOException if /proc cannot be read
     */
    public ObjectNode run(String mode) throws IOException {
        ObjectNode out = new ObjectMapper().createObjectNode();
        out.put("mode", mode);
        out.put("config", config.name().toLowerCase(java.util.Locale.ROOT));
        out.put("device", Devices.nameOf(device));
        try (NDManager manager = NDManager.newBaseManager(device)) {
            switch (mode) {
                case "gemm":
                    double gflops = gemm(manager);
                    out.put("gflops", gflops);
                    out.put("ms_per_step", GEMM_FLOPS / gflops / 1e6);
                    break;
                case "infer":
                case "merged":
                case "unmerged":
                    inference(mode, manager, out);
                    break;
                case "mixed":
                    mixed(manager, out);
                    break;
                case "lora":
                case "full":
                case "prefix":
                    training(mode, manager, out);
                    break;
                case "generate":
                    generation(manager, out);
                    break;
                default:
                    throw new IllegalArgumentException(
                            "unknown mode \"" + mode + "\"; modes: " + MODES);
            }
        }
        for (String key : EVERY_LINE) {
            if (!out.has(key)) {
                out.putNull(key); // not applicable, such as a matrix product's tokens
            }
        }
        out.put("peak_rss_mb", Memory.peakRssMb());
        return out;
    }

    /** The matrix product's speed: float32 2048 x 2048 x 2048. */
    static double gemm(NDManager manager) {
        int n = GEMM_SIZE;
        try (NDManager scope = manager.newSubManager()) {
            NDArray a = scope.randomNormal(new Shape(n, n));
            NDArray b = scope.randomNormal(new Shape(n, n));
            double[] times = new double[7];
            for (int i = -2; i < times.length; i++) {
                long start = System.nanoTime();
                try (NDArray c = a.matMul(b)) {
                    if (c.getDevice().isGpu()) {
                        // CUDA returns before the product is done: reading an element waits
                        c.getFloat(0, 0);
                    }
                }
                if (i >= 0) {
                    times[i] = (System.nanoTime() - start) / 1e9;
                }
            }
            return GEMM_FLOPS / median(times) / 1e9;
        }
    }

    private LlamaForCausalLM model(NDManager manager) {
        return LlamaForCausalLM.random(config.llama(), manager, SEED);
    }

    private LoRAModel lora(LlamaForCausalLM llama) {
        return new LoRAModel(
                llama,
                LoRAConfig.builder()
                        .setTargetModules(LlamaForCausalLM.PROJECTIONS)
                        .optR(8)
                        .optLoraAlpha(16)
                        .build());
    }

    private NDArray tokens(NDManager manager, long seed, int rows, int length) {
        Random random = new Random(seed);
        long[] ids = new long[rows * length];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = 3 + random.nextInt(config.llama().getVocabSize() - 3);
        }
        return manager.create(ids, new Shape(rows, length));
    }

    @SuppressWarnings("try") // the scope switches the adapter off
    private void inference(String mode, NDManager manager, ObjectNode out) {
        LlamaForCausalLM llama = model(manager);
        ParameterStore parameters = new ParameterStore(manager, false);
        NDArray ids = tokens(manager, SEED, config.batch(), config.sequence());
        if ("infer".equals(mode)) {
            out.put("trainable_params", 0);
            out.put("total_params", count(BlockPaths.parameters(llama)));
            perStep(out, timed(step -> forward(llama, parameters, ids)));
            return;
        }
        LoRAModel lora = lora(llama);
        perturb(lora, LoRAModel.DEFAULT_ADAPTER, manager);
        counts(lora, out);
        boolean merged = "merged".equals(mode);
        // The base model's time is taken in this JVM, alternating with the adapted model's, from
        // the same weights: separate JVMs differ by several percent, more than the effect.
        Runnable adapted = () -> forward(lora, parameters, ids);
        Runnable base =
                () -> {
                    try (AdapterScope off = lora.disableAdapter()) {
                        forward(lora, parameters, ids);
                    }
                };
        // merging before the adapted pass and unmerging before the base pass, untimed; at least
        // COMPARED_PAIRS pairs after COMPARED_WARMUP, since a difference of a few percent drowns
        // in five steps' noise and in the JIT compiler's warm-up
        double[] seconds =
                alternating(
                        Math.max(timedSteps, COMPARED_PAIRS),
                        merged ? lora::merge : () -> {},
                        adapted,
                        lora::unmerge,
                        base);
        perStep(out, seconds[0]);
        out.put("base_ms_per_step", seconds[1] * 1e3);
        out.put("speed_vs_base", seconds[2]);
        out.put("compared_pairs", Math.max(timedSteps, COMPARED_PAIRS));
    }

    /**
     * A batch whose rows use {@link #MIXED_ADAPTERS} adapters in turn ({@link
     * LoRAModel#forAdapterRows}), timed against what a server without grouping does: a full
     * forward pass over the batch per adapter, keeping that adapter's rows. Same weights, same
     * JVM, alternating.
     */
    @SuppressWarnings("try") // the scope routes the rows
    private void mixed(NDManager manager, ObjectNode out) {
        LlamaForCausalLM llama = model(manager);
        LoRAModel lora = lora(llama);
        List<String> adapters = new ArrayList<>(List.of(LoRAModel.DEFAULT_ADAPTER));
        for (int i = 1; i < MIXED_ADAPTERS; i++) {
            adapters.add("adapter" + i);
            lora.addAdapter("adapter" + i, lora.getPeftConfig());
        }
        for (String name : adapters) {
            perturb(lora, name, manager);
        }
        counts(lora, out);
        ParameterStore parameters = new ParameterStore(manager, false);
        NDArray ids = tokens(manager, SEED, config.batch(), config.sequence());
        List<String> rows = new ArrayList<>();
        for (int i = 0; i < config.batch(); i++) {
            rows.add(adapters.get(i % MIXED_ADAPTERS));
        }
        Runnable grouped =
                () -> {
                    try (AdapterScope scope = lora.forAdapterRows(rows)) {
                        forward(lora, parameters, ids);
                    }
                };
        Runnable perAdapter =
                () -> {
                    for (String name : adapters) {
                        lora.setAdapter(name);
                        forward(lora, parameters, ids);
                    }
                };
        int pairs = Math.max(timedSteps, COMPARED_PAIRS);
        double[] seconds = alternating(pairs, () -> {}, grouped, () -> {}, perAdapter);
        perStep(out, seconds[0]);
        out.put("adapters", MIXED_ADAPTERS);
        out.put("per_adapter_passes_ms_per_step", seconds[1] * 1e3);
        out.put("speed_vs_per_adapter_passes", seconds[2]);
        out.put("compared_pairs", pairs);
    }

    /** Gives an adapter's B small random values, so that its branch computes something. */
    private static void perturb(LoRAModel lora, String name, NDManager manager) {
        for (LoRALinear layer : lora.getLoRALayers(name).values()) {
            NDArray b = layer.getBranch(name).getLoraB().getArray();
            b.addi(manager.randomNormal(0, 0.01f, b.getShape(), b.getDataType()));
        }
    }

    @SuppressWarnings("try") // the scope frees every array of a step
    private static void forward(Block model, ParameterStore parameters, NDArray ids) {
        try (NDScope scope = new NDScope()) {
            model.forward(parameters, new NDList(ids), false).head().getFloat(0, 0, 0);
        }
    }

    private void training(String mode, NDManager manager, ObjectNode out) throws IOException {
        LlamaForCausalLM llama = model(manager);
        TrainableModel trainable;
        switch (mode) {
            case "lora":
                trainable = TrainableModel.of(lora(llama));
                break;
            case "prefix":
                trainable =
                        TrainableModel.of(
                                new PrefixModelForCausalLM(
                                        llama,
                                        PrefixConfig.builder()
                                                .fromModel(llama)
                                                .setNumPrefixTokens(64)
                                                .build()));
                break;
            default:
                trainable = TrainableModel.full(llama, dir -> {});
        }
        Map<String, Parameter> all = BlockPaths.parameters(trainable.block());
        long trainableCount = count(trainable.trainableParameters());
        out.put("trainable_params", trainableCount);
        out.put("total_params", count(all));
        List<List<TokenizedExample>> batch = List.of(examples());
        long targets = (long) config.batch() * (config.sequence() - 1);
        try (AdamW optimizer = new AdamW(trainable.trainableParameters(), 0.9, 0.999, 1e-8, 0)) {
            TrainingStep step = new TrainingStep(trainable, optimizer, 1.0, manager, false);
            double seconds = timed(s -> step.run(batch, targets, 1e-4));
            perStep(out, seconds);
            double flopsPerToken =
                    modelFlopsPerToken(llama, trainable, "prefix".equals(mode) ? 64 : 0);
            double gemm = gemm(manager);
            double achieved = flopsPerToken * config.batch() * config.sequence() / seconds / 1e9;
            out.put("model_gflops", achieved);
            out.put("gemm_gflops", gemm);
            out.put("efficiency", achieved / gemm);
            if (longSteps > 0) {
                longRun(step, batch, targets, out);
            }
        }
    }

    /**
     * Trains {@code longSteps} more steps and reports resident memory after step 50 and at the end.
     * With the JVM's default young generation (a share of a heap sized from the machine's memory)
     * the heap becomes resident page by page as allocation first cycles through it: about 140 MB
     * over the first ~150 steps here, then flat, which would read as growth. The child JVMs of
     * {@code peft4j bench} therefore run with a bounded young generation ({@code -Xmn64m}); the
     * JVM's arguments are reported with the numbers.
     */
    private void longRun(
            TrainingStep step, List<List<TokenizedExample>> batch, long targets, ObjectNode out) {
        long[] rss = new long[2];
        for (int s = 1; s <= longSteps; s++) {
            step.run(batch, targets, 1e-4);
            if (s == Math.min(50, longSteps)) {
                rss[0] = Memory.rssMb();
            }
        }
        rss[1] = Memory.rssMb();
        out.put("long_steps", longSteps);
        out.put("rss_mb_after_step_50", rss[0]);
        out.put("rss_mb_at_end", rss[1]);
        out.put("rss_growth", (double) rss[1] / rss[0] - 1);
        out.put("java_heap_committed_mb", Runtime.getRuntime().totalMemory() >> 20);
        out.put("jvm_args", String.join(" ", Memory.jvmArguments()));
    }

    private List<TokenizedExample> examples() {
        Random random = new Random(SEED);
        List<TokenizedExample> rows = new ArrayList<>();
        for (int b = 0; b < config.batch(); b++) {
            int[] ids = new int[config.sequence()];
            for (int t = 0; t < ids.length; t++) {
                ids[t] = 3 + random.nextInt(config.llama().getVocabSize() - 3);
            }
            rows.add(new TokenizedExample(ids, ids.clone()));
        }
        return rows;
    }

    /** Model FLOPs of a training step per token (see the class doc). */
    private double modelFlopsPerToken(
            LlamaForCausalLM llama, TrainableModel trainable, int prefix) {
        LlamaConfig c = config.llama();
        double flops = 0;
        for (Map.Entry<String, Parameter> entry :
                BlockPaths.parameters(trainable.block()).entrySet()) {
            String name = entry.getKey();
            long size = entry.getValue().getShape().size();
            // paths are relative to the trained block: "base_model." in front for an adapter
            boolean matrix =
                    name.endsWith("_proj.weight")
                            || name.endsWith("lora_A")
                            || name.endsWith("lora_B")
                            || name.endsWith("lm_head.weight")
                            || c.isTieWordEmbeddings()
                                    && name.endsWith("model.embed_tokens.weight");
            if (matrix) {
                flops += (entry.getValue().requiresGradient() ? 6.0 : 4.0) * size;
            }
        }
        double context = config.sequence() + prefix;
        flops += 12.0 * c.getNumHiddenLayers() * c.getHiddenSize() * context;
        return flops;
    }

    private void generation(NDManager manager, ObjectNode out) {
        LlamaForCausalLM llama = model(manager);
        out.put("trainable_params", 0);
        out.put("total_params", count(BlockPaths.parameters(llama)));
        int[] prompt =
                Arrays.stream(tokens(manager, SEED, 1, 32).toLongArray())
                        .mapToInt(l -> (int) l)
                        .toArray();
        CausalLMGenerator generator = new CausalLMGenerator(llama);
        GenerationConfig cached = GenerationConfig.builder().optMaxNewTokens(128).build();
        GenerationConfig recompute =
                GenerationConfig.builder().optMaxNewTokens(128).optUseCache(false).build();
        LongConsumer generate = s -> generator.generate(List.of(prompt), cached, manager);
        double first = seconds(() -> generate.accept(0));
        double withCache = timed(generate, Math.max(warmupSteps, generationWarmup));
        double without = timedFew(() -> generator.generate(List.of(prompt), recompute, manager), 2);
        out.put("ms_per_step", withCache * 1000 / 128);
        out.put("tokens_per_s", 128 / withCache);
        out.put("first_tokens_per_s", 128 / first);
        out.put("recompute_tokens_per_s", 128 / without);
        out.put("cache_speedup", without / withCache);
    }

    private void perStep(ObjectNode out, double seconds) {
        out.put("ms_per_step", seconds * 1000);
        out.put("tokens_per_s", config.batch() * config.sequence() / seconds);
    }

    private static void counts(PeftModel model, ObjectNode out) {
        out.put("trainable_params", model.countTrainableParameters());
        out.put("total_params", model.countAllParameters());
    }

    private static long count(Map<String, Parameter> parameters) {
        return parameters.values().stream().mapToLong(p -> p.getShape().size()).sum();
    }

    /** Times {@code timedSteps} calls after {@code warmupSteps}; returns the median seconds. */
    private double timed(LongConsumer step) {
        return timed(step, warmupSteps);
    }

    /** Times {@code timedSteps} calls after {@code warmup} others; returns the median seconds. */
    private double timed(LongConsumer step, int warmup) {
        for (int i = 0; i < warmup; i++) {
            step.accept(i);
        }
        double[] times = new double[timedSteps];
        for (int i = 0; i < timedSteps; i++) {
            long start = System.nanoTime();
            step.accept(i);
            times[i] = (System.nanoTime() - start) / 1e9;
        }
        return median(times);
    }

    /**
     * Times two passes in turn, each after its untimed preparation, warm-up first; returns the
     * median seconds of each and the median over pairs of {@code second / first}, which a slow
     * stretch of the machine affects less than a ratio of medians.
     */
    private double[] alternating(
            int pairs,
            Runnable prepareFirst,
            Runnable first,
            Runnable prepareSecond,
            Runnable second) {
        double[] a = new double[pairs];
        double[] b = new double[pairs];
        double[] ratio = new double[pairs];
        for (int i = -Math.max(warmupSteps, COMPARED_WARMUP); i < pairs; i++) {
            prepareFirst.run();
            double tookFirst = seconds(first);
            prepareSecond.run();
            double tookSecond = seconds(second);
            if (i >= 0) {
                a[i] = tookFirst;
                b[i] = tookSecond;
                ratio[i] = tookSecond / tookFirst;
            }
        }
        return new double[] {median(a), median(b), median(ratio)};
    }

    private static double seconds(Runnable run) {
        long start = System.nanoTime();
        run.run();
        return (System.nanoTime() - start) / 1e9;
    }

    private static double timedFew(Runnable run, int count) {
        run.run();
        double[] times = new double[count];
        for (int i = 0; i < count; i++) {
            long start = System.nanoTime();
            run.run();
            times[i] = (System.nanoTime() - start) / 1e9;
        }
        return median(times);
    }

    static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    /** Resident memory of this process, from /proc/self/status. */
    static final class Memory {
        private Memory() {}

        static long peakRssMb() throws IOException {
            return read("VmHWM:");
        }

        static long rssMb() {
            try {
                return read("VmRSS:");
            } catch (IOException e) {
                return -1;
            }
        }

        static List<String> jvmArguments() {
            return ManagementFactory.getRuntimeMXBean().getInputArguments();
        }

        private static long read(String key) throws IOException {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith(key)) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024;
                }
            }
            return -1;
        }
    }
}
