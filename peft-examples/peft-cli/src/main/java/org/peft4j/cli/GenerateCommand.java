package org.peft4j.cli;

import ai.djl.ndarray.NDManager;
import ai.djl.nn.Block;

import org.peft4j.core.lm.CausalLMGenerator;
import org.peft4j.core.lm.GenerationConfig;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.lora.LoRAModel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code peft4j generate}: continues a prompt with a Llama checkpoint, optionally with an adapter,
 * and writes the prompt and its continuation to standard output as they are generated, as
 * llama2.c's {@code run} does.
 */
@Command(
        name = "generate",
        mixinStandardHelpOptions = true,
        description = "Generate text with a Llama checkpoint (and an optional adapter).")
public final class GenerateCommand implements Callable<Integer> {

    private static final Logger logger = LoggerFactory.getLogger(GenerateCommand.class);

    @Mixin ModelOptions model;

    @Mixin AdapterOption adapter;

    @Mixin DeviceOption device;

    @Option(names = "--prompt", description = "The prompt (default: empty, start from BOS).")
    String prompt = "";

    @Option(
            names = "--max-new-tokens",
            description = "Most tokens to generate (default: ${DEFAULT-VALUE}).",
            defaultValue = "256")
    int maxNewTokens;

    @Option(
            names = "--temperature",
            description = "Sampling temperature; 0 is greedy (default: ${DEFAULT-VALUE}).",
            defaultValue = "0")
    float temperature;

    @Option(
            names = "--top-k",
            description =
                    "Sample among the k most likely tokens; 0 is off (default: ${DEFAULT-VALUE}).",
            defaultValue = "0")
    int topK;

    @Option(
            names = "--top-p",
            description = "Nucleus sampling mass; 1 is off (default: ${DEFAULT-VALUE}).",
            defaultValue = "1")
    float topP;

    @Option(
            names = "--seed",
            description = "Sampling seed (default: ${DEFAULT-VALUE}).",
            defaultValue = "42")
    long seed;

    /** Creates the command; picocli calls this. */
    public GenerateCommand() {}

    /** {@inheritDoc} */
    @Override
    public Integer call() throws Exception {
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        try (NDManager manager = NDManager.newBaseManager(device.resolve());
                LlamaTokenizer tokens = model.openTokenizer()) {
            LlamaForCausalLM llama = model.load(manager);
            Block block = adapter.apply(llama);
            if (block instanceof LoRAModel) {
                ((LoRAModel) block).merge(true); // inference at the base model's cost
            }
            GenerationConfig config =
                    GenerationConfig.builder()
                            .optMaxNewTokens(maxNewTokens)
                            .optTemperature(temperature)
                            .optTopK(topK)
                            .optTopP(topP)
                            .optSeed(seed)
                            .optEosTokenIds(llama.getConfig().getEosTokenIds())
                            .build();
            int[] input = tokens.encode(prompt, true, false);
            StreamingPrinter printer = new StreamingPrinter(tokens, out);
            long start = System.nanoTime();
            int[] result =
                    new CausalLMGenerator(block, llama.getNumHiddenLayers())
                            .generate(List.of(input), config, manager, s -> printer.show(s.get(0)))
                            .get(0);
            printer.show(result);
            out.println();
            double seconds = (System.nanoTime() - start) / 1e9;
            int generated = result.length - input.length;
            logger.info(
                    String.format(
                            Locale.ROOT,
                            "%d tokens in %.2f s, %.1f tokens/s",
                            generated,
                            seconds,
                            generated / seconds));
        }
        return 0;
    }

    /** Prints the decoded text as it grows. */
    private static final class StreamingPrinter {
        private final LlamaTokenizer tokenizer;
        private final PrintStream out;
        private String shown = "";

        StreamingPrinter(LlamaTokenizer tokenizer, PrintStream out) {
            this.tokenizer = tokenizer;
            this.out = out;
        }

        void show(int[] sequence) {
            String text = tokenizer.decode(sequence);
            // a multi-byte character may still be incomplete: hold back a trailing U+FFFD
            while (text.endsWith("\uFFFD")) {
                text = text.substring(0, text.length() - 1);
            }
            if (text.startsWith(shown)) {
                out.print(text.substring(shown.length()));
                shown = text;
            }
        }
    }
}
