package org.peft4j.cli;

import ai.djl.ndarray.NDManager;

import org.peft4j.core.PeftModel;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.llama.weights.LlamaCheckpoints;
import org.peft4j.lora.LoRAModel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code peft4j merge}: folds a LoRA adapter into the base weights and writes a Hugging Face
 * checkpoint ({@code config.json}, {@code model.safetensors}, the tokenizer) that any HF-compatible
 * tool loads. The output is written all or nothing; a non-empty one is refused unless {@code
 * --overwrite} is given (then it is replaced as a whole), and one that is, lies inside or contains
 * {@code --model} or {@code --adapter} is always refused.
 */
@Command(
        name = "merge",
        mixinStandardHelpOptions = true,
        description =
                "Merge a LoRA adapter into its base model and write a Hugging Face checkpoint.")
public final class MergeCommand implements Callable<Integer> {

    private static final Logger logger = LoggerFactory.getLogger(MergeCommand.class);

    // Its own --model and --adapter rather than the shared mixins: here the adapter is required,
    // and the tokenizer files beside the model are copied, not opened, so --tokenizer would mean
    // nothing. The loading is the mixins'.
    @Option(
            names = "--model",
            required = true,
            description = "The base checkpoint (HF directory or llama2.c .bin).")
    Path model;

    @Option(names = "--adapter", required = true, description = "The LoRA adapter directory.")
    Path adapter;

    @Option(
            names = "--output",
            required = true,
            description =
                    "Where to write the merged checkpoint: a new or empty directory (or one to"
                            + " replace with --overwrite).")
    Path output;

    @Option(
            names = "--overwrite",
            description =
                    "Replace a non-empty --output as a whole: none of its old files stays."
                            + " Never --model's or --adapter's directory.")
    boolean overwrite;

    /** Creates the command; picocli calls this. */
    public MergeCommand() {}

    /** {@inheritDoc} */
    @Override
    public Integer call() throws Exception {
        checkOutput();
        try (NDManager manager = NDManager.newBaseManager()) {
            LlamaForCausalLM llama = ModelOptions.load(model, manager);
            PeftModel peft = AdapterOption.load(llama, adapter);
            if (!(peft instanceof LoRAModel)) {
                throw new IllegalArgumentException(
                        adapter
                                + " holds a "
                                + peft.getPeftConfig().getPeftType()
                                + " adapter; only LoRA adapters merge into weights (a prefix is"
                                + " extra keys and values: use generate --adapter instead)");
            }
            ((LoRAModel) peft).mergeAndUnload();
            // the weights, config and tokenizer in one replacement: all of them or none
            LlamaCheckpoints.saveWithTokenizer(llama, model, output);
            logger.info("merged {} into {}: {}", adapter, model, output);
            System.out.println(output);
        }
        return 0;
    }

    /** Before anything is loaded: the output may not hold the inputs, nor anything unasked. */
    private void checkOutput() throws IOException {
        Map<String, Path> inputs = new LinkedHashMap<>();
        inputs.put("--model", model);
        inputs.put("--adapter", adapter);
        OutputDirectory.checkApart(output, inputs);
        if (!overwrite) {
            OutputDirectory.checkEmpty(output, "--overwrite to replace it as a whole");
        }
        OutputDirectory.checkCreatable(output);
    }
}
