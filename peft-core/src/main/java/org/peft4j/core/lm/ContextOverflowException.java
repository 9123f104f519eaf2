package org.peft4j.core.lm;

/**
 * Thrown by {@link CausalLMGenerator} for a prompt that, with {@code maxNewTokens}, does not fit in
 * the model's context, before anything runs. The message is in the Java API's names; the lengths
 * are kept so that a caller with names of its own (a command line's options) can word it in them
 * without checking the lengths again.
 */
public final class ContextOverflowException extends IllegalArgumentException {

    private static final long serialVersionUID = 1L;

    /** The prompt's length. */
    private final int promptTokens;

    /** The tokens to generate. */
    private final int maxNewTokens;

    /** The model's context. */
    private final int context;

    /** What the config asked for. */
    private final PromptTruncation truncation;

    /**
     * Creates the exception.
     *
     * @param message the message, naming both lengths and the context
     * @param promptTokens the prompt's length
     * @param maxNewTokens the tokens to generate
     * @param context the model's context in tokens
     * @param truncation the config's truncation: {@link PromptTruncation#NONE} when the prompt was
     *     refused as it is, {@link PromptTruncation#LEFT} when even the prompt's first token leaves
     *     no room for {@code maxNewTokens}
     */
    public ContextOverflowException(
            String message,
            int promptTokens,
            int maxNewTokens,
            int context,
            PromptTruncation truncation) {
        super(message);
        this.promptTokens = promptTokens;
        this.maxNewTokens = maxNewTokens;
        this.context = context;
        this.truncation = truncation;
    }

    /**
     * Returns the length of the prompt refused.
     *
     * @return its tokens, BOS included
     */
    public int getPromptTokens() {
        return promptTokens;
    }

    /**
     * Returns the tokens that were to be generated.
     *
     * @return the config's {@code maxNewTokens}
     */
    public int getMaxNewTokens() {
        return maxNewTokens;
    }

    /**
     * Returns the model's context.
     *
     * @return the most tokens a row may hold ({@link CausalLanguageModel#maxPositionsOf})
     */
    public int getContext() {
        return context;
    }

    /**
     * Returns the truncation the config asked for, which tells the two cases apart.
     *
     * @return {@link PromptTruncation#NONE}: the prompt and {@code maxNewTokens} do not fit; {@link
     *     PromptTruncation#LEFT}: {@code maxNewTokens} alone takes the whole context
     */
    public PromptTruncation getTruncation() {
        return truncation;
    }
}
