package org.peft4j.cli;

import ai.djl.nn.Block;

import org.peft4j.core.PeftModel;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;

/**
 * An optional {@code --adapter}, shared by {@code generate} and {@code eval}, and the loading it
 * means: {@link PeftModel#fromPretrained}, which reads the adapter's config to find its method
 * (LoRA or prefix tuning, peft4j's or Hugging Face PEFT's files).
 */
final class AdapterOption {

    private static final Logger logger = LoggerFactory.getLogger(AdapterOption.class);

    @Option(names = "--adapter", description = "An adapter directory saved by peft4j or HF PEFT.")
    Path adapter;

    /** Creates the option; picocli calls this. */
    AdapterOption() {}

    /**
     * Returns the model with the adapter, or the model itself when none was given.
     *
     * @param llama the base model
     * @return the block to run
     * @throws IOException if the adapter cannot be read
     */
    Block apply(LlamaForCausalLM llama) throws IOException {
        return adapter == null ? llama : load(llama, adapter);
    }

    /**
     * Wraps a model with an adapter from a directory, for this option and for {@code merge}, whose
     * {@code --adapter} is required.
     *
     * @param llama the base model
     * @param dir the adapter directory
     * @return the adapted model, its adapter on the base model's device
     * @throws IOException if the adapter cannot be read, or does not fit the model
     */
    static PeftModel load(LlamaForCausalLM llama, Path dir) throws IOException {
        PeftModel peft = PeftModel.fromPretrained(llama, dir);
        logger.info("adapter {}: {}", dir, peft.trainableParametersSummary());
        return peft;
    }
}
