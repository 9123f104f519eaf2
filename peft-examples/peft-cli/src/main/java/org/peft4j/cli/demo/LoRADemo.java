package org.peft4j.cli.demo;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;

import org.peft4j.train.data.Dataset;
import org.peft4j.train.data.Example;
import org.peft4j.train.data.ExampleEncoder;
import org.peft4j.train.data.TokenizedExample;
import org.peft4j.cli.demo.StringTasks.Task;
import org.peft4j.models.llama.LlamaConfig;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.models.llama.weights.LlamaCheckpoints;
import org.peft4j.train.ExactMatch;
import org.peft4j.train.FineTuneConfig;
import org.peft4j.train.FineTuner;
import org.peft4j.train.Schedule;
import org.peft4j.train.TrainableModel;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.lora.LoRAModel;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * The offline demo: a small Llama is pretrained from scratch on {@code copy} and {@code lower},
 * then LoRA teaches it {@code upper}, which it has never seen; exact-match accuracy on held-out
 * words is measured before and after.
 *
 * <p>Output: {@code <output>/base-model} (a Hugging Face checkpoint with its {@code tokenizer.bin})
 * and {@code <output>/adapter} (the LoRA adapter, {@code metrics.csv}, {@code loss.svg}), which
 * {@code peft4j generate --model <output>/base-model --adapter <output>/adapter --prompt "upper:
 * hello >"} uses.
 */
public final class LoRADemo {

    private final PrintStream out;
    private final PrintStream progress;

    /**
     * Creates the demo.
     *
     * @param out where results go
     * @param progress where progress bars go
     */
    public LoRADemo(PrintStream out, PrintStream progress) {
        this.out = out;
        this.progress = progress;
    }

    /**
     * What the demo measured.
     *
     * @param before exact match on the new task before LoRA
     * @param after exact match after LoRA
     * @param baseModel the saved base model
     * @param adapter the saved adapter
     */
    public record Result(double before, double after, Path baseModel, Path adapter) {}

    /**
     * Runs the demo on the CPU.
     *
     * @param output the output directory
     * @param seed the seed
     * @return the measurements
     * @throws IOException if files cannot be written
     */
    public Result run(Path output, long seed) throws IOException {
        return run(output, seed, Device.cpu());
    }

    /**
     * Runs the demo on a device.
     *
     * @param output the output directory
     * @param seed the seed
     * @param device where the model, the adapter and the batches live; checked by the caller
     *     ({@link org.peft4j.core.Devices#require(Device)})
     * @return the measurements
     * @throws IOException if files cannot be written
     */
    public Result run(Path output, long seed, Device device) throws IOException {
        Path base = output.resolve("base-model");
        Path adapter = output.resolve("adapter");
        Files.createDirectories(base);
        CharVocabulary.write(base.resolve("tokenizer.bin"));
        try (NDManager manager = NDManager.newBaseManager(device);
                LlamaTokenizer tokenizer = LlamaTokenizer.findNextTo(base)) {
            LlamaConfig config =
                    LlamaConfig.builder()
                            .setSizes(128, 256, 2, 4, 2, CharVocabulary.size())
                            .optMaxPositionEmbeddings(64)
                            .optTieWordEmbeddings(true)
                            .optRmsNormEps(1e-5)
                            .build();
            LlamaForCausalLM llama = LlamaForCausalLM.random(config, manager, seed);
            ExampleEncoder encoder =
                    ExampleEncoder.builder(tokenizer)
                            .fromModel(llama)
                            .optSrcLength(24)
                            .optMaxLength(32)
                            .build();

            out.println("1/3 pretraining a " + describe(llama) + " on copy and lower ...");
            List<Example> pretraining = StringTasks.examples(12000, seed, Task.COPY, Task.LOWER);
            new FineTuner(
                            TrainableModel.full(llama, dir -> LlamaCheckpoints.save(llama, dir)),
                            FineTuneConfig.builder()
                                    .optEpochs(2)
                                    .optBatchSize(32)
                                    .optLearningRate(3e-3)
                                    .optWarmupSteps(50)
                                    .optSchedule(Schedule.Kind.COSINE)
                                    .optLoggingSteps(50)
                                    .optSeed(seed)
                                    .build(),
                            new Dataset(encode(encoder, pretraining), seed),
                            List.of(),
                            base,
                            manager,
                            progress)
                    .run(null);

            List<Example> heldOut = StringTasks.examples(200, seed + 1, Task.UPPER);
            double copy =
                    ExactMatch.measure(
                            llama,
                            2,
                            tokenizer,
                            StringTasks.examples(100, seed + 2, Task.COPY),
                            50,
                            manager);
            double before = ExactMatch.measure(llama, 2, tokenizer, heldOut, 50, manager);
            out.printf(
                    Locale.ROOT,
                    "   base model: copy %.0f%% exact, upper (never seen) %.0f%% exact%n",
                    100 * copy,
                    100 * before);

            out.println("2/3 LoRA fine-tuning on upper ...");
            LoRAModel lora =
                    new LoRAModel(
                            llama,
                            LoRAConfig.builder()
                                    .setTargetModules(
                                            ".*q_proj.*",
                                            ".*v_proj.*",
                                            ".*k_proj.*",
                                            ".*o_proj.*",
                                            ".*gate_proj.*",
                                            ".*up_proj.*",
                                            ".*down_proj.*")
                                    .optR(8)
                                    .optLoraAlpha(16)
                                    .optBaseModelNameOrPath(base.toString())
                                    .optTaskType("CAUSAL_LM")
                                    .build());
            List<Example> upper = StringTasks.examples(3000, seed + 3, Task.UPPER);
            new FineTuner(
                            TrainableModel.of(lora),
                            FineTuneConfig.builder()
                                    .optEpochs(2)
                                    .optBatchSize(32)
                                    .optLearningRate(5e-3)
                                    .optWarmupSteps(10)
                                    .optLoggingSteps(20)
                                    .optSeed(seed)
                                    .build(),
                            new Dataset(encode(encoder, upper), seed),
                            encode(encoder, heldOut.subList(0, 50)),
                            adapter,
                            manager,
                            progress)
                    .run(null);

            double after = ExactMatch.measure(lora, 2, tokenizer, heldOut, 50, manager);
            out.printf(
                    Locale.ROOT,
                    "3/3 upper exact match: %.0f%% before LoRA, %.0f%% after (%d held-out words)%n",
                    100 * before,
                    100 * after,
                    heldOut.size());
            return new Result(before, after, base, adapter);
        }
    }

    private static List<TokenizedExample> encode(ExampleEncoder encoder, List<Example> examples) {
        return encoder.encodeAll(examples, "the demo's examples").examples();
    }

    private static String describe(LlamaForCausalLM llama) {
        long count =
                llama.getParameters().values().stream().mapToLong(p -> p.getShape().size()).sum();
        return String.format(Locale.ROOT, "%,d-parameter Llama", count);
    }
}
