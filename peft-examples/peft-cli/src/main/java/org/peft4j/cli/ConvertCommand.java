package org.peft4j.cli;

import ai.djl.ndarray.NDManager;

import org.peft4j.core.PeftModel;
import org.peft4j.models.llama.LlamaForCausalLM;
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
 * {@code peft4j convert}: reads an adapter in any form peft4j loads, PaddleNLP's included ({@code
 * lora_config.json} with {@code lora_model_state.pdparams}, its rank files or {@code
 * peft_model.safetensors}), checks it against the base model, and writes it as {@code
 * savePretrained} does: Hugging Face PEFT's {@code adapter_config.json} and {@code
 * adapter_model.safetensors} beside {@code lora_config.json}. The output must be new or empty, and
 * may not be, lie inside or contain {@code --model} or {@code --adapter}.
 */
@Command(
        name = "convert",
        mixinStandardHelpOptions = true,
        description =
                "Convert an adapter (e.g. PaddleNLP's lora_model_state.pdparams) to the"
                        + " Hugging Face PEFT format.")
public final class ConvertCommand implements Callable<Integer> {

    private static final Logger logger = LoggerFactory.getLogger(ConvertCommand.class);

    @Option(
            names = "--model",
            required = true,
            description = "The base checkpoint the adapter was trained on (HF directory).")
    Path model;

    @Option(
            names = "--adapter",
            required = true,
            description = "The adapter directory (PaddleNLP's or Hugging Face's).")
    Path adapter;

    @Option(
            names = "--output",
            required = true,
            description = "Where to write the Hugging Face adapter: a new or empty directory.")
    Path output;

    /** Creates the command; picocli calls this. */
    public ConvertCommand() {}

    /** {@inheritDoc} */
    @Override
    public Integer call() throws Exception {
        checkOutput();
        try (NDManager manager = NDManager.newBaseManager()) {
            LlamaForCausalLM llama = ModelOptions.load(model, manager);
            // loading checks every key and shape against the model before anything is written
            PeftModel peft = AdapterOption.load(llama, adapter);
            peft.savePretrained(output);
            logger.info("converted {} into {}", adapter, output);
            System.out.println(output);
        }
        return 0;
    }

    private void checkOutput() throws IOException {
        Map<String, Path> inputs = new LinkedHashMap<>();
        inputs.put("--model", model);
        inputs.put("--adapter", adapter);
        OutputDirectory.checkApart(output, inputs);
        OutputDirectory.checkEmpty(output, "a new or empty directory");
        OutputDirectory.checkCreatable(output);
    }
}
