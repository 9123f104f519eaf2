package org.peft4j.cli;

import ai.djl.ndarray.NDManager;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.peft4j.core.config.JsonConfigReader;
import org.peft4j.models.llama.LlamaConfig;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.llama.weights.LlamaCheckpoints;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code peft4j init}: writes a checkpoint with random weights for the architecture of a {@code
 * config.json}, with the tokenizer and chat template beside it, optionally made smaller: a base
 * model to try a pipeline on (data, template, training, generation) without downloading one. Its
 * weights are drawn as Hugging Face draws a new model's, {@code N(0, initializer_range)}.
 */
@Command(
        name = "init",
        mixinStandardHelpOptions = true,
        description =
                "Write a randomly initialised checkpoint for a config.json (and its tokenizer),"
                        + " optionally smaller.")
public final class InitCommand implements Callable<Integer> {

    private static final Logger logger = LoggerFactory.getLogger(InitCommand.class);

    @Option(
            names = "--config",
            required = true,
            description =
                    "A directory with config.json and the tokenizer files to copy (tokenizer.json"
                            + " and its configs, or tokenizer.bin).")
    Path config;

    @Option(
            names = "--output",
            required = true,
            description = "Where to write the checkpoint: a new or empty directory.")
    Path output;

    @Option(
            names = "--num-hidden-layers",
            converter = Ranges.AtLeast1.class,
            description = "Fewer layers than the config's.")
    Integer layers;

    @Option(
            names = "--hidden-size",
            converter = Ranges.AtLeast1.class,
            description = "Another hidden size; head_dim then follows hidden size / heads.")
    Integer hidden;

    @Option(
            names = "--intermediate-size",
            converter = Ranges.AtLeast1.class,
            description = "Another MLP size.")
    Integer intermediate;

    @Option(
            names = "--num-attention-heads",
            converter = Ranges.AtLeast1.class,
            description = "Other query heads; head_dim then follows hidden size / heads.")
    Integer heads;

    @Option(
            names = "--num-key-value-heads",
            converter = Ranges.AtLeast1.class,
            description = "Other key/value heads.")
    Integer kvHeads;

    @Option(
            names = "--initializer-range",
            description =
                    "The weights' standard deviation (default: the config's initializer_range,"
                            + " else 0.02).")
    Double std;

    @Option(names = "--seed", defaultValue = "0", description = "Seed (default: ${DEFAULT-VALUE}).")
    long seed;

    /** Creates the command; picocli calls this. */
    public InitCommand() {}

    /** {@inheritDoc} */
    @Override
    public Integer call() throws Exception {
        OutputDirectory.checkApart(output, Map.of("--config", config));
        OutputDirectory.checkEmpty(output, "another --output");
        OutputDirectory.checkCreatable(output);
        Path file = config.resolve("config.json");
        JsonConfigReader.read(file); // strict UTF-8 and JSON, errors naming the file
        ObjectNode json = (ObjectNode) new ObjectMapper().readTree(file.toFile());
        put(json, "num_hidden_layers", layers);
        put(json, "hidden_size", hidden);
        put(json, "intermediate_size", intermediate);
        put(json, "num_attention_heads", heads);
        put(json, "num_key_value_heads", kvHeads);
        if (hidden != null || heads != null) {
            json.remove("head_dim"); // follows the new sizes
        }
        double deviation = std != null ? std : json.path("initializer_range").asDouble(0.02);
        LlamaConfig architecture =
                LlamaConfig.read(JsonConfigReader.parse(json.toString(), file.toString()));
        try (NDManager manager = NDManager.newBaseManager()) {
            LlamaForCausalLM llama =
                    LlamaForCausalLM.random(architecture, manager, seed, deviation);
            LlamaCheckpoints.saveWithTokenizer(llama, config, output);
        }
        logger.info("{} with random weights, N(0, {}): {}", architecture, deviation, output);
        System.out.println(output);
        return 0;
    }

    private static void put(ObjectNode json, String key, Integer value) {
        if (value != null) {
            json.put(key, value);
        }
    }
}
