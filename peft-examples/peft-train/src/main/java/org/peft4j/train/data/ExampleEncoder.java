package org.peft4j.train.data;

import ai.djl.nn.Block;

import org.peft4j.core.lm.CausalLanguageModel;
import org.peft4j.core.lm.TokenCrossEntropy;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;

/**
 * Tokenises examples as the seed does for causal language models, within a max length that fits
 * the model's context.
 *
 * <p>An example fits when all of it, {@code BOS + source_1 + target_1 + EOS + ... + source_n +
 * target_n + EOS}, is at most {@code maxLength} tokens; it is then kept whole, except that a
 * single round's source longer than {@code srcLength} is cut on the left to it (BOS kept), as the
 * seed does. An example that does not fit is <em>overlong</em>, and {@link Overlong} says what
 * becomes of it:
 *
 * <ul>
 *   <li>{@link Overlong#TRUNCATE} (the default), the seed's rules: a conversation loses its oldest
 *       rounds until the rest fits; one round (or a last round that alone does not fit) has its
 *       source cut on the left to {@code srcLength} tokens (BOS kept) and its target cut on the
 *       right to {@code maxLength - len(source)}, EOS appended only when the target was shorter.
 *   <li>{@link Overlong#DROP}: the example is left out.
 * </ul>
 *
 * <p>BOS is there only where the tokenizer adds one ({@link
 * org.peft4j.models.tokenizer.SpecialTokens#isAddBos()}: not for Qwen), and EOS is the tokenizer's
 * appended EOS ({@link org.peft4j.models.tokenizer.SpecialTokens#getAppendedEosId()}).
 *
 * <p>Labels are {@code -100} on sources and the target's tokens (and EOS) on targets. {@link
 * #encodeAll} counts and logs the examples cut or dropped, so that no example is shortened
 * silently.
 *
 * <p>A conversation ({@link Example#isConversation()}) is rendered by the chat template given to
 * {@link Builder#optChatTemplate} and learned on its assistant turns (on every token with {@link
 * Builder#optTrainOnAll}); see {@link ConversationEncoder}. When it is overlong it is cut on the
 * right to the max length, or dropped; one with nothing left to learn (no assistant turn, or none
 * within the max length) is skipped and counted.
 *
 * <pre>{@code
 * ExampleEncoder encoder = ExampleEncoder.builder(tokenizer)
 *         .fromModel(llama)          // maxLength may not exceed the model's context
 *         .optMaxLength(256)         // default: 2048, or the context when shorter
 *         .optOverlong(Overlong.DROP)
 *         .build();
 * List<TokenizedExample> train =
 *         encoder.encodeAll(JsonlExamples.read(file, false), file.toString()).examples();
 * }</pre>
 */
public final class ExampleEncoder {

    /** The max length when none is set and the model's context is not shorter (the seed's). */
    public static final int DEFAULT_MAX_LENGTH = 2048;

    /** The source length when none is set and it is below the max length (the seed's). */
    public static final int DEFAULT_SRC_LENGTH = 1024;

    private static final Logger logger = LoggerFactory.getLogger(ExampleEncoder.class);

    private final LlamaTokenizer tokenizer;
    private final int srcLength;
    private final int maxLength;
    private final Overlong overlong;
    private final ConversationEncoder conversations;

    /**
     * Creates an encoder that truncates, for a model whose context is at least {@code maxLength};
     * {@link #builder(LlamaTokenizer)} checks it against the model.
     *
     * @param tokenizer the model's tokenizer
     * @param srcLength the most source tokens kept, &gt; 0
     * @param maxLength the most tokens of an example, &gt; {@code srcLength}
     * @throws IllegalArgumentException if the lengths are out of range
     */
    public ExampleEncoder(LlamaTokenizer tokenizer, int srcLength, int maxLength) {
        this(builder(tokenizer).optSrcLength(srcLength).optMaxLength(maxLength).checked());
    }

    private ExampleEncoder(Builder b) {
        this.tokenizer = b.tokenizer;
        this.srcLength = b.srcLength;
        this.maxLength = b.maxLength;
        this.overlong = b.overlong;
        this.conversations =
                b.template == null
                        ? null
                        : new ConversationEncoder(b.tokenizer, b.template, b.trainOnAll);
    }

    /**
     * Creates a builder.
     *
     * @param tokenizer the model's tokenizer
     * @return a builder for a max length of 2048 (or the model's context, when set and shorter),
     *     a source length of 1024 (or half the max length, when that is not above 1024), and
     *     truncation
     */
    public static Builder builder(LlamaTokenizer tokenizer) {
        return new Builder(tokenizer);
    }

    /**
     * Returns the max length a builder uses when none is set.
     *
     * @param maxPositions the model's context
     * @return the seed's 2048, or the context when it is shorter
     */
    public static int defaultMaxLength(int maxPositions) {
        return Math.min(DEFAULT_MAX_LENGTH, maxPositions);
    }

    /** The seed's 1024 when it is below the max length, else half the max length. */
    private static int defaultSrcLength(int maxLength) {
        return DEFAULT_SRC_LENGTH < maxLength ? DEFAULT_SRC_LENGTH : maxLength / 2;
    }

    /**
     * Returns the most source tokens a single round keeps.
     *
     * @return the source length
     */
    public int getSrcLength() {
        return srcLength;
    }

    /**
     * Returns the most tokens of an encoded example.
     *
     * @return the max length, within the model's context
     */
    public int getMaxLength() {
        return maxLength;
    }

    /**
     * Returns what becomes of an example longer than the max length.
     *
     * @return cut or dropped
     */
    public Overlong getOverlong() {
        return overlong;
    }

    /**
     * Tokenises an example, and logs a warning if it is overlong (with its length); {@link
     * #encodeAll} logs a count instead, for many examples.
     *
     * @param example the example
     * @return the ids and aligned labels, at most {@code maxLength} long; empty if the example is
     *     overlong and the encoder drops such examples
     */
    public Optional<TokenizedExample> encode(Example example) {
        Encoding encoding = encoding(example);
        if (encoding.example().countTargets() == 0) {
            logger.warn("{}nothing to learn within the max length: skipped", example.where());
            return Optional.empty();
        }
        if (!encoding.overlong()) {
            return Optional.of(encoding.example());
        }
        logger.warn(
                "an example of {} tokens is longer than the max length of {} tokens and was {}",
                encoding.length(),
                maxLength,
                fate());
        return overlong == Overlong.DROP ? Optional.empty() : Optional.of(encoding.example());
    }

    /** What becomes of an overlong example, for the log. */
    private String fate() {
        return (overlong == Overlong.DROP ? "left out" : "cut to it")
                + " (overlong examples: "
                + overlong.name().toLowerCase(Locale.ROOT)
                + ")";
    }

    /**
     * What {@link #encodeAll} made of a list of examples.
     *
     * @param examples the encoded examples, in the given order (without the dropped ones)
     * @param read how many examples were given
     * @param truncated how many overlong examples were cut to the max length
     * @param dropped how many overlong examples were left out
     * @param sourcesCut how many examples that fit lost the start of a source longer than {@code
     *     srcLength} (the seed's source length, which applies to fitting examples too)
     * @param skipped how many conversations had nothing to learn (no assistant turn, or none
     *     within the max length) and were left out
     */
    public record Encoded(
            List<TokenizedExample> examples,
            int read,
            int truncated,
            int dropped,
            int sourcesCut,
            int skipped) {

        /**
         * Copies the list.
         *
         * @param examples the encoded examples
         * @param read the examples given
         * @param truncated the overlong examples cut
         * @param dropped the overlong examples left out
         * @param sourcesCut the fitting examples whose source was cut
         * @param skipped the conversations with nothing to learn
         */
        public Encoded {
            examples = List.copyOf(examples);
        }
    }

    /**
     * Tokenises examples, and logs how many were cut or dropped (a warning for each kind that
     * occurred).
     *
     * @param examples the examples
     * @param source what they are, for the log (the file they came from)
     * @return the encoded examples and the counts
     */
    public Encoded encodeAll(List<Example> examples, String source) {
        List<TokenizedExample> out = new ArrayList<>(examples.size());
        int truncated = 0;
        int dropped = 0;
        int sourcesCut = 0;
        int skipped = 0;
        for (Example example : examples) {
            Encoding encoding = encoding(example);
            if (encoding.example().countTargets() == 0) {
                skipped++;
            } else if (!encoding.overlong()) {
                sourcesCut += encoding.sourceCut() ? 1 : 0;
                out.add(encoding.example());
            } else if (overlong == Overlong.DROP) {
                dropped++;
            } else {
                truncated++;
                out.add(encoding.example());
            }
        }
        int read = examples.size();
        if (truncated + dropped > 0) { // one of them: the encoder either cuts or drops
            logger.warn(
                    "{}: {} of {} examples are longer than the max length of {} tokens and were {}",
                    source,
                    truncated + dropped,
                    read,
                    maxLength,
                    fate());
        }
        if (sourcesCut > 0) {
            logger.info(
                    "{}: {} of {} examples have a source longer than the source length of {}"
                            + " tokens, cut on the left to it",
                    source,
                    sourcesCut,
                    read,
                    srcLength);
        }
        if (skipped > 0) {
            logger.warn(
                    "{}: {} of {} conversations have no assistant turn within the max length of {}"
                            + " tokens, so nothing to learn, and were skipped",
                    source,
                    skipped,
                    read,
                    maxLength);
        }
        return new Encoded(out, read, truncated, dropped, sourcesCut, skipped);
    }

    /**
     * An example cut to fit, its length whole (every round, with EOS), whether that is more than
     * the max length, and whether the source of one that fits was cut to the source length.
     */
    private record Encoding(
            TokenizedExample example, int length, boolean overlong, boolean sourceCut) {}

    private Encoding encoding(Example example) {
        if (example.isConversation()) {
            return conversation(example);
        }
        int rounds = example.sources().size();
        int length = 0;
        if (rounds > 1) {
            for (int first = 0; first < rounds - 1; first++) {
                TokenizedExample joined = joinRounds(example, first);
                if (first == 0) {
                    length = joined.inputIds().length;
                }
                if (joined.inputIds().length <= maxLength) {
                    return new Encoding(joined, length, first > 0, false);
                }
            }
        }
        String sourceText = example.sources().get(rounds - 1);
        String targetText = example.targets().get(rounds - 1);
        int[] source = tokenizer.encodeStart(sourceText);
        int[] target = tokenizer.encode(targetText, false, false);
        if (rounds == 1) {
            length = source.length + target.length + 1;
        }
        boolean fits = length <= maxLength; // a conversation that gets here never fits
        return new Encoding(
                oneRound(source, target), length, !fits, fits && source.length > srcLength);
    }

    /** A conversation, whole when it fits, else cut on the right to the max length. */
    private Encoding conversation(Example example) {
        if (conversations == null) {
            throw new IllegalArgumentException(
                    example.where()
                            + "holds a conversation, but the encoder has no chat template: load"
                            + " it with ChatTemplate.fromPretrained(modelDir) (the model's"
                            + " tokenizer_config.json chat_template or chat_template.jinja) and"
                            + " pass it to optChatTemplate");
        }
        TokenizedExample whole = conversations.encode(example);
        int length = whole.inputIds().length;
        if (length <= maxLength) {
            return new Encoding(whole, length, false, false);
        }
        TokenizedExample cut =
                new TokenizedExample(
                        Arrays.copyOf(whole.inputIds(), maxLength),
                        Arrays.copyOf(whole.labels(), maxLength));
        return new Encoding(cut, length, true, false);
    }

    private TokenizedExample oneRound(int[] source, int[] target) {
        if (source.length > srcLength) {
            // keep BOS where the tokenizer adds one (Qwen adds none: then cut the source only)
            int head = tokenizer.getSpecialTokens().isAddBos() ? 1 : 0;
            int[] kept = Arrays.copyOf(source, srcLength);
            int tail = srcLength - head;
            System.arraycopy(source, source.length - tail, kept, head, tail);
            source = kept;
        }
        int targetMax = maxLength - source.length;
        if (target.length > targetMax) {
            target = Arrays.copyOf(target, targetMax);
        }
        if (target.length < targetMax) {
            target = append(target, tokenizer.getSpecialTokens().getAppendedEosId());
        }
        return assemble(source, target);
    }

    private TokenizedExample joinRounds(Example example, int first) {
        int[] ids = new int[0];
        int[] labels = new int[0];
        for (int i = first; i < example.sources().size(); i++) {
            int[] source =
                    i == first
                            ? tokenizer.encodeStart(example.sources().get(i))
                            : tokenizer.encode(example.sources().get(i), false, false);
            int[] target =
                    append(
                            tokenizer.encode(example.targets().get(i), false, false),
                            tokenizer.getSpecialTokens().getAppendedEosId());
            TokenizedExample round = assemble(source, target);
            ids = concat(ids, round.inputIds());
            labels = concat(labels, round.labels());
        }
        return new TokenizedExample(ids, labels);
    }

    private static TokenizedExample assemble(int[] source, int[] target) {
        int[] ids = concat(source, target);
        int[] labels = new int[ids.length];
        Arrays.fill(labels, 0, source.length, TokenCrossEntropy.IGNORE_INDEX);
        System.arraycopy(target, 0, labels, source.length, target.length);
        return new TokenizedExample(ids, labels);
    }

    private static int[] append(int[] values, int value) {
        int[] out = Arrays.copyOf(values, values.length + 1);
        out[values.length] = value;
        return out;
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    /** The builder of {@link ExampleEncoder}; every setting is optional. */
    public static final class Builder {

        private final LlamaTokenizer tokenizer;
        private int maxPositions = Integer.MAX_VALUE;
        private Integer givenMaxLength;
        private Integer givenSrcLength;
        private Overlong overlong = Overlong.TRUNCATE;
        private ChatRenderer template;
        private boolean trainOnAll;
        private int maxLength;
        private int srcLength;

        Builder(LlamaTokenizer tokenizer) {
            this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        }

        /**
         * Sets the context the max length must fit in to a model's ({@link
         * CausalLanguageModel#maxPositionsOf(Block)}: {@code max_position_embeddings}, less the
         * virtual tokens of a prefix adapter).
         *
         * @param model the model the examples are for, or an adapter model around it
         * @return this builder
         */
        public Builder fromModel(Block model) {
            return optMaxPositions(CausalLanguageModel.maxPositionsOf(model));
        }

        /**
         * Sets the context the max length must fit in.
         *
         * @param maxPositions the model's context in tokens; default unlimited
         * @return this builder
         */
        public Builder optMaxPositions(int maxPositions) {
            this.maxPositions = maxPositions;
            return this;
        }

        /**
         * Sets the most tokens of an encoded example.
         *
         * @param maxLength at least 2 and at most the model's context; default 2048, or the
         *     context when it is shorter
         * @return this builder
         */
        public Builder optMaxLength(int maxLength) {
            this.givenMaxLength = maxLength;
            return this;
        }

        /**
         * Sets the most source tokens a single round keeps (cut on the left, BOS kept).
         *
         * @param srcLength &gt; 0 and below the max length; default 1024, or half the max length
         *     when 1024 is not below it
         * @return this builder
         */
        public Builder optSrcLength(int srcLength) {
            this.givenSrcLength = srcLength;
            return this;
        }

        /**
         * Sets what becomes of an example longer than the max length.
         *
         * @param overlong {@link Overlong#TRUNCATE} (default) or {@link Overlong#DROP}
         * @return this builder
         */
        public Builder optOverlong(Overlong overlong) {
            this.overlong = Objects.requireNonNull(overlong, "overlong");
            return this;
        }

        /**
         * Sets the chat template that renders conversation examples.
         *
         * @param template {@code ChatTemplate.fromPretrained(modelDir)::render}, or any renderer
         *     of the same contract; default none (a conversation is then an error)
         * @return this builder
         */
        public Builder optChatTemplate(ChatRenderer template) {
            this.template = template;
            return this;
        }

        /**
         * Sets whether a conversation's loss covers every token rather than its assistant turns.
         *
         * @param trainOnAll true to learn the system and user turns too; default false
         * @return this builder
         */
        public Builder optTrainOnAll(boolean trainOnAll) {
            this.trainOnAll = trainOnAll;
            return this;
        }

        /**
         * Validates and builds the encoder.
         *
         * @return the encoder
         * @throws IllegalArgumentException if the max length exceeds the model's context, or the
         *     lengths are out of range; the message names both lengths
         */
        public ExampleEncoder build() {
            return new ExampleEncoder(checked());
        }

        Builder checked() {
            if (maxPositions < 2) {
                throw new IllegalArgumentException(
                        "the model's context of "
                                + maxPositions
                                + " positions holds no example (a source and a target token at"
                                + " least)");
            }
            if (givenMaxLength != null && givenMaxLength > maxPositions) {
                throw new IllegalArgumentException(
                        "maxLength "
                                + givenMaxLength
                                + " is longer than the model's context of "
                                + maxPositions
                                + " positions; use at most "
                                + maxPositions);
            }
            maxLength = givenMaxLength != null ? givenMaxLength : defaultMaxLength(maxPositions);
            if (maxLength < 2) {
                throw new IllegalArgumentException(
                        "maxLength must be >= 2 (a source and a target token), got " + maxLength);
            }
            srcLength = givenSrcLength != null ? givenSrcLength : defaultSrcLength(maxLength);
            if (srcLength <= 0 || srcLength >= maxLength) {
                throw new IllegalArgumentException(
                        "need 0 < srcLength < maxLength, got srcLength "
                                + srcLength
                                + " and maxLength "
                                + maxLength);
            }
            return this;
        }
    }
}
