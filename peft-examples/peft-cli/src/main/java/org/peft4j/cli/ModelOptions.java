package org.peft4j.cli;

import ai.djl.ndarray.NDManager;

import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.parallel.TensorParallel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code --model} and {@code --tokenizer}, shared by the commands that load a Llama checkpoint
 * ({@code generate}, {@code eval}, {@code stories}, and {@code finetune}, where the pair is
 * optional), and the loading they mean. The tokenizer is opened before the weights are read, so
 * that a wrong path fails in a moment with the path in the message.
 */
final class ModelOptions {

    private static final Logger logger = LoggerFactory.getLogger(ModelOptions.class);

    @Option(
            names = "--model",
            required = true,
            description =
                    "A Hugging Face checkpoint directory, or a llama2.c .bin file (or its"
                            + " directory).")
    Path model;

    @Option(
            names = "--tokenizer",
            description = "tokenizer.json or tokenizer.bin (default: found next to the model).")
    Path tokenizer;

    /** Creates the options; picocli calls this. */
    ModelOptions() {}

    /** Returns the checkpoint's path, as given. */
    Path path() {
        return model;
    }

    /**
     * Returns the directory of the tokenizer's files, where its {@code tokenizer_config.json} and
     * chat template are: that of {@code --tokenizer}, else the model's.
     */
    Path tokenizerDirectory() {
        Path path = tokenizer != null ? tokenizer : model;
        return Files.isDirectory(path) ? path : path.toAbsolutePath().getParent();
    }

    /** Returns {@code --tokenizer} as given, or {@code null}. */
    Path tokenizer() {
        return tokenizer;
    }

    /**
     * Opens the tokenizer: the one named, else the one next to the model.
     *
     * @return the tokenizer, to be closed by the caller
     * @throws IOException if there is none (the message names the path and the files looked for)
     */
    LlamaTokenizer openTokenizer() throws IOException {
        return tokenizer != null
                ? LlamaTokenizer.load(tokenizer)
                : LlamaTokenizer.findNextTo(model);
    }

    /**
     * Loads the checkpoint onto the manager's device.
     *
     * @param manager the manager that owns the weights
     * @return the model
     * @throws IOException if the checkpoint cannot be read
     */
    LlamaForCausalLM load(NDManager manager) throws IOException {
        return load(model, manager);
    }

    /**
     * Loads this rank's part of the checkpoint onto the manager's device.
     *
     * @param manager the manager that owns this rank's weights
     * @param group the tensor-parallel group
     * @param tensorParallelOutput whether each rank keeps its part of the logits
     * @return this rank's model
     * @throws IOException if the checkpoint cannot be read
     */
    LlamaForCausalLM load(NDManager manager, TensorParallel group, boolean tensorParallelOutput)
            throws IOException {
        LlamaForCausalLM llama =
                LlamaForCausalLM.fromPretrained(model, manager, group, tensorParallelOutput);
        logger.info("loaded {} ({})", model, llama.getConfig());
        return llama;
    }

    /**
     * Loads a checkpoint onto the manager's device, for a command whose {@code --model} is its own
     * ({@code merge}, which has no tokenizer option).
     *
     * @param model the checkpoint
     * @param manager the manager that owns the weights
     * @return the model
     * @throws IOException if the checkpoint cannot be read
     */
    static LlamaForCausalLM load(Path model, NDManager manager) throws IOException {
        LlamaForCausalLM llama = LlamaForCausalLM.fromPretrained(model, manager);
        logger.info("loaded {} ({})", model, llama.getConfig());
        return llama;
    }
}
