package org.peft4j.core.lm;

import java.util.Objects;

/**
 * How {@link CausalLMGenerator} picks tokens: greedy when the temperature is 0, otherwise sampling
 * from {@code softmax(logits / temperature)} restricted to the {@code topK} most likely tokens and
 * to the smallest set whose probability reaches {@code topP}.
 *
 * <p>A prompt and its {@code maxNewTokens} must fit in the model's context together; one that does
 * not is refused, or cut on the left when {@link Builder#optPromptTruncation} says so.
 */
public final class GenerationConfig {

    private final int maxNewTokens;
    private final float temperature;
    private final int topK;
    private final float topP;
    private final long seed;
    private final int[] eosTokenIds;
    private final int padTokenId;
    private final boolean useCache;
    private final PromptTruncation promptTruncation;

    private GenerationConfig(Builder builder) {
        if (builder.maxNewTokens < 0) {
            throw new IllegalArgumentException(
                    "maxNewTokens must be >= 0, got " + builder.maxNewTokens);
        }
        if (!(builder.temperature >= 0) || Float.isInfinite(builder.temperature)) {
            throw new IllegalArgumentException(
                    "temperature must be a finite number >= 0 (0 = greedy), got "
                            + builder.temperature);
        }
        if (builder.topK < 0) {
            throw new IllegalArgumentException("topK must be >= 0 (0 = off), got " + builder.topK);
        }
        if (!(builder.topP > 0 && builder.topP <= 1)) {
            throw new IllegalArgumentException(
                    "topP must lie in (0, 1] (1 = off), got " + builder.topP);
        }
        this.maxNewTokens = builder.maxNewTokens;
        this.temperature = builder.temperature;
        this.topK = builder.topK;
        this.topP = builder.topP;
        this.seed = builder.seed;
        this.eosTokenIds = builder.eosTokenIds.clone();
        this.padTokenId = builder.padTokenId;
        this.useCache = builder.useCache;
        this.promptTruncation = builder.promptTruncation;
    }

    /**
     * Creates a builder.
     *
     * @return a builder for greedy generation of 128 tokens with the cache
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Returns the most tokens generated per row.
     *
     * @return the limit
     */
    public int getMaxNewTokens() {
        return maxNewTokens;
    }

    /**
     * Returns the sampling temperature.
     *
     * @return 0 for greedy decoding
     */
    public float getTemperature() {
        return temperature;
    }

    /**
     * Returns how many of the most likely tokens sampling considers.
     *
     * @return 0 for all
     */
    public int getTopK() {
        return topK;
    }

    /**
     * Returns the nucleus probability mass sampling keeps.
     *
     * @return 1 for all
     */
    public float getTopP() {
        return topP;
    }

    /**
     * Returns the sampling seed.
     *
     * @return the seed of the random number generator
     */
    public long getSeed() {
        return seed;
    }

    /**
     * Returns the tokens that end a row.
     *
     * @return a copy of the ids; empty for none
     */
    public int[] getEosTokenIds() {
        return eosTokenIds.clone();
    }

    /**
     * Tests whether a token ends a row.
     *
     * @param token a token id
     * @return whether it is one of the EOS ids
     */
    public boolean isEos(int token) {
        for (int eos : eosTokenIds) {
            if (eos == token) {
                return true;
            }
        }
        return false;
    }

    /**
     * Returns the token used to left-pad shorter prompts (masked out, so its value is irrelevant).
     *
     * @return the pad id
     */
    public int getPadTokenId() {
        return padTokenId;
    }

    /**
     * Returns whether each step feeds only the new token and the key/value cache.
     *
     * @return false to recompute the whole sequence at every step (slow; for testing the cache)
     */
    public boolean isUseCache() {
        return useCache;
    }

    /**
     * Returns what happens to a prompt too long for the model's context with {@code maxNewTokens}.
     *
     * @return {@link PromptTruncation#NONE} to refuse it, {@link PromptTruncation#LEFT} to cut it
     */
    public PromptTruncation getPromptTruncation() {
        return promptTruncation;
    }

    /** The builder of {@link GenerationConfig}; every setting is optional. */
    public static final class Builder {

        int maxNewTokens = 128;
        float temperature;
        int topK;
        float topP = 1f;
        long seed = 42;
        int[] eosTokenIds = {};
        int padTokenId;
        boolean useCache = true;
        PromptTruncation promptTruncation = PromptTruncation.NONE;

        Builder() {}

        /**
         * Sets the most tokens generated per row.
         *
         * @param maxNewTokens at least 0; default 128
         * @return this builder
         */
        public Builder optMaxNewTokens(int maxNewTokens) {
            this.maxNewTokens = maxNewTokens;
            return this;
        }

        /**
         * Sets the sampling temperature.
         *
         * @param temperature 0 (default) for greedy decoding, otherwise &gt; 0
         * @return this builder
         */
        public Builder optTemperature(float temperature) {
            this.temperature = temperature;
            return this;
        }

        /**
         * Sets top-k sampling.
         *
         * @param topK how many of the most likely tokens to keep; 0 (default) keeps all
         * @return this builder
         */
        public Builder optTopK(int topK) {
            this.topK = topK;
            return this;
        }

        /**
         * Sets nucleus (top-p) sampling.
         *
         * @param topP the probability mass to keep, in (0, 1]; 1 (default) keeps all
         * @return this builder
         */
        public Builder optTopP(float topP) {
            this.topP = topP;
            return this;
        }

        /**
         * Sets the sampling seed.
         *
         * @param seed the seed; default 42
         * @return this builder
         */
        public Builder optSeed(long seed) {
            this.seed = seed;
            return this;
        }

        /**
         * Sets the tokens that end a row (Llama 3 has several).
         *
         * @param eosTokenIds the ids; default none
         * @return this builder
         */
        public Builder optEosTokenIds(int... eosTokenIds) {
            this.eosTokenIds = eosTokenIds.clone();
            return this;
        }

        /**
         * Sets the padding token for shorter prompts.
         *
         * @param padTokenId the id; default 0
         * @return this builder
         */
        public Builder optPadTokenId(int padTokenId) {
            this.padTokenId = padTokenId;
            return this;
        }

        /**
         * Sets whether to use the key/value cache.
         *
         * @param useCache true (default) for cached decoding
         * @return this builder
         */
        public Builder optUseCache(boolean useCache) {
            this.useCache = useCache;
            return this;
        }

        /**
         * Sets what happens to a prompt that, with {@code maxNewTokens}, is longer than the model's
         * context.
         *
         * @param truncation {@link PromptTruncation#NONE} (default) to refuse it, {@link
         *     PromptTruncation#LEFT} to keep its first token and its end
         * @return this builder
         */
        public Builder optPromptTruncation(PromptTruncation truncation) {
            this.promptTruncation = Objects.requireNonNull(truncation, "truncation");
            return this;
        }

        /**
         * Validates and builds the config.
         *
         * @return the config
         * @throws IllegalArgumentException naming the invalid setting and its range
         */
        public GenerationConfig build() {
            return new GenerationConfig(this);
        }
    }
}
