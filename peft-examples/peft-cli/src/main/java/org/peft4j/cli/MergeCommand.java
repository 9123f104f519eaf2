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

import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code peft4j merge}: folds a LoRA adapter into the base weights and writes a Hugging Face
 * checkpoint ({@code config.json}, {@code model.safetensors}, the tokenizer) that any HF-compatible
 * tool loads.
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
            description = "Where to write the merged checkpoint.")
    Path output;

    /** Creates the command; picocli calls this. */
    public MergeCommand() {}

    /** {@inheritDoc} */
    @Override
    public Integer call() throws Exception {
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
            LlamaCheckpoints.save(llama, output);
            LlamaCheckpoints.copyTokenizer(model, output);
            logger.info("merged {} into {}: {}", adapter, model, output);
            System.out.println(output);
        }
        return 0;
    }
}
