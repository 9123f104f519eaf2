package org.peft4j.cli;

import ai.djl.ndarray.NDManager;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.lm.CausalLMGenerator;
import org.peft4j.core.lm.ContextOverflowException;
import org.peft4j.core.lm.GenerationConfig;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code peft4j stories}: makes fine-tuning data from a model's own writing: samples stories from
 * BOS, keeps those that contain a word, replaces it, and writes {@code {"src": "", "tgt": story}}
 * lines. The stories260K demo teaches the model to call its heroine Mia instead of Lily this way.
 */
@Command(
        name = "stories",
        mixinStandardHelpOptions = true,
        description =
                "Sample stories from a model, replace a word, write JSON Lines training data.")
public final class StoriesCommand implements Callable<Integer> {

    private static final Logger logger = LoggerFactory.getLogger(StoriesCommand.class);

    @Mixin ModelOptions model;

    @Option(names = "--output", required = true, description = "The JSON Lines file to write.")
    Path output;

    @Option(
            names = "--samples",
            defaultValue = "64",
            converter = Ranges.AtLeast1.class,
            description = "Stories to sample (default: ${DEFAULT-VALUE}).")
    int samples;

    @Option(
            names = "--max-new-tokens",
            defaultValue = "200",
            converter = Ranges.AtLeast1.class,
            description = "Most tokens a story (default: ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @Option(
            names = "--temperature",
            defaultValue = "0.8",
            converter = Ranges.Temperature.class,
            description = "Sampling temperature (default: ${DEFAULT-VALUE}).")
    float temperature;

    @Option(
            names = "--replace",
            description = "FROM=TO: keep stories containing FROM, with FROM replaced by TO.")
    String replace;

    @Option(
            names = "--seed",
            defaultValue = "42",
            description = "Sampling seed (default: ${DEFAULT-VALUE}).")
    long seed;

    /** Creates the command; picocli calls this. */
    public StoriesCommand() {}

    /** {@inheritDoc} */
    @Override
    public Integer call() throws Exception {
        String from = null;
        String to = null;
        if (replace != null) {
            int eq = replace.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("--replace must be FROM=TO, got " + replace);
            }
            from = replace.substring(0, eq);
            to = replace.substring(eq + 1);
        }
        ObjectMapper json = new ObjectMapper();
        StringBuilder lines = new StringBuilder();
        int kept = 0;
        try (NDManager manager = NDManager.newBaseManager();
                LlamaTokenizer tokenizer = model.openTokenizer()) {
            LlamaForCausalLM llama = model.load(manager);
            List<int[]> prompts = new ArrayList<>();
            for (int i = 0; i < samples; i++) {
                prompts.add(new int[] {tokenizer.getBosTokenId()});
            }
            GenerationConfig config =
                    tokenizer
                            .getSpecialTokens()
                            .configure(GenerationConfig.builder())
                            .optMaxNewTokens(maxNewTokens)
                            .optTemperature(temperature)
                            .optSeed(seed)
                            .build();
            List<int[]> stories;
            try {
                stories = new CausalLMGenerator(llama).generate(prompts, config, manager);
            } catch (ContextOverflowException e) {
                // refused before the first step; said again in the command's option
                throw new IllegalArgumentException(
                        "--max-new-tokens "
                                + maxNewTokens
                                + " is longer than the model's context: a story of BOS and "
                                + maxNewTokens
                                + " tokens needs "
                                + (e.getPromptTokens() + maxNewTokens)
                                + " positions, and "
                                + ModelContext.of(llama, llama, model.path())
                                + "; use --max-new-tokens "
                                + (e.getContext() - e.getPromptTokens())
                                + " or less",
                        e);
            }
            for (int[] story : stories) {
                String text = tokenizer.decode(story).strip();
                if (from != null) {
                    if (!text.contains(from)) {
                        continue;
                    }
                    text = text.replace(from, to);
                }
                ObjectNode line = json.createObjectNode();
                line.put("src", "");
                line.put("tgt", text);
                lines.append(json.writeValueAsString(line)).append('\n');
                kept++;
            }
        }
        if (kept == 0) {
            throw new IllegalStateException(
                    "no sampled story contains \"" + from + "\"; sample more or pick another word");
        }
        AtomicFiles.writeString(output, lines.toString());
        logger.info("wrote {} of {} sampled stories to {}", kept, samples, output);
        return 0;
    }
}
