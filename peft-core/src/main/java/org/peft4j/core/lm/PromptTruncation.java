package org.peft4j.core.lm;

/**
 * What {@link CausalLMGenerator} does with a prompt that, with the tokens to generate, would not fit
 * in the model's context ({@link CausalLanguageModel#getMaxPositions()}).
 */
public enum PromptTruncation {

    /** Refuse it: the generator throws, naming the lengths and the context (the default). */
    NONE,

    /**
     * Drop tokens from the left: keep the prompt's first token (BOS, which Llama models expect at
     * position 0) and as many of its last tokens as leave room for {@code maxNewTokens}, as Hugging
     * Face's {@code truncation_side="left"} keeps the end of a prompt.
     */
    LEFT
}
