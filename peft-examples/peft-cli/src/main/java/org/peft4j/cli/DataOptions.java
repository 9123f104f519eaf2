package org.peft4j.cli;

import ai.djl.nn.Block;

import org.peft4j.models.chat.ChatTemplate;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.train.data.Example;
import org.peft4j.train.data.ExampleEncoder;
import org.peft4j.train.data.JsonlExamples;
import org.peft4j.train.data.Overlong;
import org.peft4j.train.data.TokenizedExample;

import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code --src-length}, {@code --max-length}, {@code --overlong}, {@code --train-on-all} and
 * {@code --skip-malformed}, shared by {@code finetune} and {@code eval}, and the reading and
 * tokenising they mean; conversations are rendered by the chat template beside the tokenizer. The
 * lengths are checked against the model (with its adapter: a prefix takes positions too) in the
 * options' own names, before any example is tokenised.
 */
final class DataOptions {

    @Option(
            names = "--src-length",
            converter = Ranges.AtLeast1.class,
            description =
                    "Most source tokens of a single round, cut on the left (default: 1024, or half"
                            + " of --max-length if 1024 is not below it).")
    Integer srcLength;

    @Option(
            names = "--max-length",
            converter = Ranges.AtLeast2.class,
            description =
                    "Most tokens of an example, at most the model's context (default: 2048, or the"
                            + " context if shorter).")
    Integer maxLength;

    @Option(
            names = "--overlong",
            converter = Ranges.OverlongChoice.class,
            defaultValue = "truncate",
            description =
                    "truncate or drop the examples longer than --max-length; either way they are"
                            + " counted in the log (default: ${DEFAULT-VALUE}).")
    Overlong overlong;

    @Option(
            names = "--train-on-all",
            description =
                    "Learn every token of a conversation (messages or conversations data), not"
                            + " only its assistant turns.")
    boolean trainOnAll;

    @Option(
            names = "--skip-malformed",
            description =
                    "Skip and count malformed data lines (not JSON, no fields, not UTF-8) instead"
                            + " of failing.")
    boolean skipMalformed;

    /** Creates the options; picocli calls this. */
    DataOptions() {}

    /**
     * Reads a JSON Lines file.
     *
     * @param file the data
     * @return its examples
     * @throws IOException if it cannot be read
     */
    List<Example> read(Path file) throws IOException {
        return JsonlExamples.read(file, skipMalformed);
    }

    /**
     * Makes the encoder for a model, checking the lengths against its context.
     *
     * @param tokenizer the model's tokenizer
     * @param model the block that runs: the model, or the model with its adapter
     * @param llama the base model
     * @param path the base model's path, for messages
     * @param templateDir where the chat template is, read only if an example is a conversation
     * @param examples the examples it will encode
     * @return the encoder
     * @throws IllegalArgumentException if {@code --max-length} exceeds the context or {@code
     *     --src-length} is not below the max length; the message names the options and lengths
     */
    ExampleEncoder encoder(
            LlamaTokenizer tokenizer,
            Block model,
            LlamaForCausalLM llama,
            Path path,
            Path templateDir,
            List<Example> examples) {
        ModelContext modelContext = ModelContext.of(model, llama, path);
        int context = modelContext.tokens();
        String has = modelContext.toString();
        if (maxLength != null && maxLength > context) {
            throw new IllegalArgumentException(
                    "--max-length "
                            + maxLength
                            + " is longer than the model's context: "
                            + has
                            + "; use --max-length "
                            + context
                            + " or less");
        }
        int max = maxLength != null ? maxLength : ExampleEncoder.defaultMaxLength(context);
        if (srcLength != null && srcLength >= max) {
            String which =
                    maxLength != null
                            ? ""
                            : max == context
                                    ? " (the default here: the model's context, " + has + ")"
                                    : " (the default)";
            throw new IllegalArgumentException(
                    "--src-length " + srcLength + " must be less than --max-length " + max + which);
        }
        ExampleEncoder.Builder builder =
                ExampleEncoder.builder(tokenizer).fromModel(model).optOverlong(overlong);
        if (maxLength != null) {
            builder.optMaxLength(maxLength);
        }
        if (srcLength != null) {
            builder.optSrcLength(srcLength);
        }
        if (examples.stream().anyMatch(Example::isConversation)) {
            builder.optChatTemplate(ChatTemplate.fromPretrained(templateDir)::render)
                    .optTrainOnAll(trainOnAll);
        }
        return builder.build();
    }

    /**
     * Tokenises the examples of a file; the encoder logs how many were cut or dropped.
     *
     * @param encoder the encoder
     * @param examples the examples read from the file
     * @param file the file, for the log and messages
     * @return the encoded examples
     * @throws IllegalArgumentException if every example was dropped
     */
    List<TokenizedExample> encode(ExampleEncoder encoder, List<Example> examples, Path file) {
        ExampleEncoder.Encoded encoded = encoder.encodeAll(examples, file.toString());
        if (encoded.examples().isEmpty() && encoded.skipped() > 0) {
            throw new IllegalArgumentException(
                    file
                            + ": none of its "
                            + encoded.read()
                            + " examples has anything to learn within --max-length "
                            + encoder.getMaxLength()
                            + " (conversations need an assistant turn); add answers, raise"
                            + " --max-length or pass --train-on-all");
        }
        if (encoded.examples().isEmpty()) {
            throw new IllegalArgumentException(
                    file
                            + ": all of its "
                            + encoded.read()
                            + " examples are longer than --max-length "
                            + encoder.getMaxLength()
                            + ", and --overlong drop left them out; raise --max-length or pass"
                            + " --overlong truncate");
        }
        return encoded.examples();
    }
}
