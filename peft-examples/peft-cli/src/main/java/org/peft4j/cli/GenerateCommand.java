package org.peft4j.cli;

import ai.djl.ndarray.NDManager;
import ai.djl.nn.Block;

import org.peft4j.core.lm.CausalLMGenerator;
import org.peft4j.core.lm.ContextOverflowException;
import org.peft4j.core.lm.GenerationConfig;
import org.peft4j.core.lm.PromptTruncation;
import org.peft4j.models.chat.ChatMessage;
import org.peft4j.models.chat.ChatTemplate;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.lora.LoRAModel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code peft4j generate}: continues a prompt with a Llama checkpoint, optionally with an adapter,
 * and writes the prompt and its continuation to standard output as they are generated, as
 * llama2.c's {@code run} does. The prompt and {@code --max-new-tokens} must fit in the model's
 * context together, unless {@code --truncate-prompt left} cuts the prompt.
 *
 * <p>With {@code --chat} the prompt is a user message (after {@code --system}'s, if given),
 * rendered by the model's chat template with the generation prompt and tokenised as transformers'
 * {@code apply_chat_template(..., tokenize=True)} does (no BOS added: the template writes it);
 * only the reply is printed.
 */
@Command(
        name = "generate",
        mixinStandardHelpOptions = true,
        description = "Generate text with a Llama checkpoint (and an optional adapter).")
public final class GenerateCommand implements Callable<Integer> {

    private static final Logger logger = LoggerFactory.getLogger(GenerateCommand.class);

    @Spec CommandSpec spec;

    @Mixin ModelOptions model;

    @Mixin AdapterOption adapter;

    @Mixin DeviceOption device;

    @Option(names = "--prompt", description = "The prompt (default: empty, start from BOS).")
    String prompt = "";

    @Option(
            names = "--max-new-tokens",
            converter = Ranges.AtLeast0.class,
            description = "Most tokens to generate (default: ${DEFAULT-VALUE}).",
            defaultValue = "256")
    int maxNewTokens;

    @Option(
            names = "--temperature",
            converter = Ranges.Temperature.class,
            description = "Sampling temperature; 0 is greedy (default: ${DEFAULT-VALUE}).",
            defaultValue = "0")
    float temperature;

    @Option(
            names = "--top-k",
            converter = Ranges.AtLeast0.class,
            description =
                    "Sample among the k most likely tokens; 0 is off (default: ${DEFAULT-VALUE}).",
            defaultValue = "0")
    int topK;

    @Option(
            names = "--top-p",
            converter = Ranges.TopP.class,
            description = "Nucleus sampling mass; 1 is off (default: ${DEFAULT-VALUE}).",
            defaultValue = "1")
    float topP;

    @Option(
            names = "--seed",
            description = "Sampling seed (default: ${DEFAULT-VALUE}).",
            defaultValue = "42")
    long seed;

    @Option(
            names = "--truncate-prompt",
            converter = Ranges.TruncationChoice.class,
            defaultValue = "none",
            description =
                    "none: a prompt too long for the model's context with --max-new-tokens is an"
                            + " error; left: keep its first token (BOS) and its end (default:"
                            + " ${DEFAULT-VALUE}).")
    PromptTruncation truncatePrompt;

    @Option(
            names = "--chat",
            description =
                    "Treat the prompt as a user message: render it with the model's chat template"
                            + " (chat_template.jinja or tokenizer_config.json) and print the"
                            + " reply.")
    boolean chat;

    @Option(
            names = "--system",
            description = "A system message before the prompt; needs --chat.")
    String system;

    /** Creates the command; picocli calls this. */
    public GenerateCommand() {}

    /** {@inheritDoc} */
    @Override
    public Integer call() throws Exception {
        if (system != null && !chat) {
            throw new ParameterException(
                    spec.commandLine(), "--system needs --chat: a system message is a chat turn");
        }
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        // the template first: a directory without one fails before the weights are read
        String rendered = chat ? renderChat() : null;
        try (NDManager manager = NDManager.newBaseManager(device.resolve());
                LlamaTokenizer tokens = model.openTokenizer()) {
            LlamaForCausalLM llama = model.load(manager);
            Block block = adapter.apply(llama);
            if (block instanceof LoRAModel) {
                ((LoRAModel) block).merge(true); // inference at the base model's cost
            }
            // stop at every EOS id of the tokenizer's files (generation_config.json's list),
            // not config.json's: Llama 3 Instruct ends a turn with its third, <|eot_id|>
            GenerationConfig config =
                    tokens.getSpecialTokens()
                            .configure(GenerationConfig.builder())
                            .optMaxNewTokens(maxNewTokens)
                            .optTemperature(temperature)
                            .optTopK(topK)
                            .optTopP(topP)
                            .optSeed(seed)
                            .optPromptTruncation(truncatePrompt)
                            .build();
            int[] input =
                    chat ? tokens.encodeWithSpans(rendered).ids() : tokens.encodeStart(prompt);
            StreamingPrinter printer = new StreamingPrinter(tokens, out, chat ? input.length : 0);
            int[] steps = {0}; // a step generates one token: the prompt may have been cut
            long start = System.nanoTime();
            int[] result;
            try {
                result =
                        new CausalLMGenerator(block, llama.getNumHiddenLayers())
                                .generate(
                                        List.of(input),
                                        config,
                                        manager,
                                        s -> {
                                            steps[0]++;
                                            printer.show(s.get(0));
                                        })
                                .get(0);
            } catch (ContextOverflowException e) {
                // refused before the first step; said again in the options' names
                throw new IllegalArgumentException(
                        ModelContext.of(block, llama, model.path()).describe(e), e);
            }
            printer.show(result);
            out.println();
            double seconds = (System.nanoTime() - start) / 1e9;
            int generated = steps[0];
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

    /** The conversation of {@code --system} and {@code --prompt}, ready for the reply. */
    private String renderChat() {
        List<ChatMessage> messages = new ArrayList<>();
        if (system != null) {
            messages.add(ChatMessage.system(system));
        }
        messages.add(ChatMessage.user(prompt));
        return ChatTemplate.fromPretrained(model.tokenizerDirectory()).render(messages, true);
    }

    /** Prints the decoded text, from a token on, as it grows. */
    private static final class StreamingPrinter {
        private final LlamaTokenizer tokenizer;
        private final PrintStream out;
        private final int from;
        private String shown = "";

        StreamingPrinter(LlamaTokenizer tokenizer, PrintStream out, int from) {
            this.tokenizer = tokenizer;
            this.out = out;
            this.from = from;
        }

        void show(int[] sequence) {
            String text =
                    tokenizer.decode(Arrays.copyOfRange(sequence, from, sequence.length));
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
