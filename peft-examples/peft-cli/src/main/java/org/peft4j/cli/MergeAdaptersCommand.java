package org.peft4j.cli;

import ai.djl.ndarray.NDManager;

import org.peft4j.core.PeftModel;
import org.peft4j.lora.LoRAModel;
import org.peft4j.lora.WeightedAdapters;
import org.peft4j.lora.WeightedAdapters.Adapter;
import org.peft4j.lora.WeightedAdapters.Combination;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code peft4j merge-adapters}: combines LoRA adapters of one base model into one adapter with
 * Hugging Face PEFT's {@code add_weighted_adapter} math ({@link WeightedAdapters}) and writes it as
 * an ordinary adapter directory, which {@code generate --adapter} and {@code merge} read. The
 * adapters are read one after the other over one copy of the base model. {@code --output} is
 * checked as {@code merge} checks it: never an input, a non-empty one only with {@code
 * --overwrite}.
 */
@Command(
        name = "merge-adapters",
        mixinStandardHelpOptions = true,
        description =
                "Combine LoRA adapters of one base model into one adapter (HF PEFT's"
                        + " add_weighted_adapter: linear, cat or svd).")
public final class MergeAdaptersCommand implements Callable<Integer> {

    private static final Logger logger = LoggerFactory.getLogger(MergeAdaptersCommand.class);

    @Spec CommandSpec spec;

    @Option(
            names = "--model",
            required = true,
            description = "The base checkpoint (HF directory or llama2.c .bin).")
    Path model;

    @Option(
            names = "--adapter",
            required = true,
            description = "A LoRA adapter directory; repeat for each adapter (two or more).")
    List<Path> adapters;

    @Option(
            names = "--weights",
            required = true,
            arity = "1..*",
            description = "One weight per --adapter, in order, e.g. --weights 0.7 0.3.")
    List<Double> weights;

    @Option(
            names = "--combination",
            defaultValue = "svd",
            description =
                    "linear (equal r; A and B each scaled by sqrt(weight * scaling)), cat (ranks"
                            + " concatenated: the exact weighted sum) or svd (that sum truncated"
                            + " to --rank) (default: ${DEFAULT-VALUE}, as HF).")
    String combination;

    @Option(
            names = "--rank",
            description = "The rank of an svd combination (default: the largest r of the inputs).")
    Integer rank;

    @Option(
            names = "--output",
            required = true,
            description =
                    "Where to write the combined adapter: a new or empty directory (or one to"
                            + " replace with --overwrite).")
    Path output;

    @Option(
            names = "--overwrite",
            description =
                    "Replace a non-empty --output as a whole. Never --model's or an --adapter's"
                            + " directory.")
    boolean overwrite;

    /** Creates the command; picocli calls this. */
    public MergeAdaptersCommand() {}

    /** {@inheritDoc} */
    @Override
    public Integer call() throws Exception {
        Combination parsed = checkOptions();
        checkOutput();
        try (NDManager manager = NDManager.newBaseManager()) {
            LlamaForCausalLM llama = ModelOptions.load(model, manager);
            List<Adapter> inputs = new ArrayList<>();
            for (Path dir : adapters) {
                inputs.add(read(llama, dir));
            }
            WeightedAdapters.Builder builder =
                    WeightedAdapters.builder()
                            .setAdapters(inputs)
                            .setWeights(weights.stream().mapToDouble(w -> w).toArray())
                            .setCombination(parsed);
            if (rank != null) {
                builder.optRank(rank);
            }
            WeightedAdapters combined = builder.build();
            combined.save(llama, output);
            logger.info(
                    "combined {} ({}, r = {}) into {}",
                    adapters,
                    parsed,
                    combined.getConfig().getR(),
                    output);
            System.out.println(output);
        }
        return 0;
    }

    /** Usage errors, exit status 2, before anything is read. */
    private Combination checkOptions() {
        Combination parsed;
        try {
            parsed = Combination.of(combination);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--combination: " + e.getMessage());
        }
        if (adapters.size() < 2) {
            throw new ParameterException(
                    spec.commandLine(),
                    "--adapter: give two or more adapters to combine, got " + adapters.size());
        }
        if (weights.size() != adapters.size()) {
            throw new ParameterException(
                    spec.commandLine(),
                    "--weights: "
                            + weights.size()
                            + " weights for "
                            + adapters.size()
                            + " --adapter directories; give one weight per adapter, in order");
        }
        if (rank != null && parsed != Combination.SVD) {
            throw new ParameterException(
                    spec.commandLine(),
                    "--rank applies to --combination svd only, not " + parsed);
        }
        if (rank != null && rank <= 0) {
            throw new ParameterException(
                    spec.commandLine(), "--rank must be an integer > 0, got " + rank);
        }
        return parsed;
    }

    /** Reads one adapter over the base model and takes the base model back. */
    private static Adapter read(LlamaForCausalLM llama, Path dir) throws IOException {
        PeftModel peft = AdapterOption.load(llama, dir);
        if (!(peft instanceof LoRAModel)) {
            throw new IllegalArgumentException(
                    "--adapter "
                            + dir
                            + " holds a "
                            + peft.getPeftConfig().getPeftType()
                            + " adapter; only LoRA adapters combine (a prefix has no A and B)");
        }
        LoRAModel lora = (LoRAModel) peft;
        try {
            return Adapter.of(dir.toString(), lora);
        } finally {
            lora.unload();
        }
    }

    /** Before anything is loaded: the output may not hold the inputs, nor anything unasked. */
    private void checkOutput() throws IOException {
        OutputDirectory.checkApart(output, Map.of("--model", model));
        for (Path adapter : adapters) {
            OutputDirectory.checkApart(output, Map.of("--adapter", adapter));
        }
        if (!overwrite) {
            OutputDirectory.checkEmpty(output, "--overwrite to replace it as a whole");
        }
        OutputDirectory.checkCreatable(output);
    }
}
