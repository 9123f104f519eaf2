package org.peft4j.models.tokenizer;

import org.peft4j.core.lm.GenerationConfig;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Objects;
import java.util.OptionalInt;

/**
 * The special token ids of a tokenizer: BOS, the ids that end generation, the EOS appended to a
 * training example, PAD, and whether BOS and EOS are added when encoding.
 *
 * <p>Generation stops at any of {@link #getEosIds()} (Llama 3 Instruct has three, Qwen2.5 two);
 * a training example ends with {@link #getAppendedEosId()}, the tokenizer's own {@code eos_token},
 * which is normally one of them. Immutable; made by {@link #builder()}, {@link #fromPretrained}
 * or {@link #llama2c()}.
 */
public final class SpecialTokens {

    private final OptionalInt bosId;
    private final int[] eosIds;
    private final int appendedEosId;
    private final OptionalInt padId;
    private final boolean addBos;
    private final boolean addEos;

    private SpecialTokens(Builder b) {
        bosId = b.bosId < 0 ? OptionalInt.empty() : OptionalInt.of(b.bosId);
        eosIds = b.eosIds.clone();
        appendedEosId = b.appendedEosId < 0 ? eosIds[0] : b.appendedEosId;
        padId = b.padId < 0 ? OptionalInt.empty() : OptionalInt.of(b.padId);
        addBos = b.addBos;
        addEos = b.addEos;
    }

    /**
     * Creates a builder.
     *
     * @return a builder with no BOS, no PAD, and neither BOS nor EOS added
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Reads the special tokens of a Hugging Face model or tokenizer directory, with the precedence
     * of {@code transformers}: {@code generation_config.json}, then {@code config.json}, then the
     * tokens {@code tokenizer_config.json} names (mapped to ids through {@code tokenizer.json}'s
     * {@code added_tokens} and {@code model.vocab}, or {@code tokenizer_config.json}'s {@code
     * added_tokens_decoder}). Every file is optional, but some file must give an EOS.
     *
     * <p>{@code add_bos_token} / {@code add_eos_token} of {@code tokenizer_config.json} say whether
     * BOS / EOS are added; where absent, whether {@code tokenizer.json}'s post-processor puts BOS
     * first / EOS last; without either, BOS and EOS are not added.
     *
     * @param dir the directory
     * @return the special tokens
     * @throws IOException if a file cannot be read, or no file gives an EOS id or token
     * @throws IllegalArgumentException if a file is not UTF-8 JSON, or a key has the wrong type, a
     *     list where one id is needed, an id outside the vocabulary, or a token not in it; the
     *     message names the file, the key and what to do
     */
    public static SpecialTokens fromPretrained(Path dir) throws IOException {
        return SpecialTokenFiles.read(dir, dir.resolve(SpecialTokenFiles.TOKENIZER));
    }

    /**
     * Returns the convention of llama2.c's {@code tokenizer.bin}: BOS 1 (added), EOS 2, no PAD.
     *
     * @return the special tokens
     */
    public static SpecialTokens llama2c() {
        return builder().optBosId(1).setEosIds(2).optAddBos(true).build();
    }

    /**
     * Returns the beginning-of-sequence id.
     *
     * @return the id, or empty where the tokenizer has none (Qwen's tokenizers)
     */
    public OptionalInt getBosId() {
        return bosId;
    }

    /**
     * Returns every id that ends generation.
     *
     * @return a copy of the ids, never empty
     */
    public int[] getEosIds() {
        return eosIds.clone();
    }

    /**
     * Tests whether an id ends generation.
     *
     * @param id a token id
     * @return whether it is one of {@link #getEosIds()}
     */
    public boolean isEos(int id) {
        return Arrays.stream(eosIds).anyMatch(eos -> eos == id);
    }

    /**
     * Returns the id put at the end of a training example, and by {@code encode(text, .., true)}.
     *
     * @return the tokenizer's {@code eos_token}, or the first of {@link #getEosIds()}
     */
    public int getAppendedEosId() {
        return appendedEosId;
    }

    /**
     * Returns the padding id.
     *
     * @return the id, or empty where the files name none
     */
    public OptionalInt getPadId() {
        return padId;
    }

    /**
     * Returns whether encoding a prompt puts BOS first.
     *
     * @return true for Llama 2 and 3, false for Qwen and SmolLM2
     */
    public boolean isAddBos() {
        return addBos;
    }

    /**
     * Returns whether encoding puts the appended EOS last.
     *
     * @return usually false
     */
    public boolean isAddEos() {
        return addEos;
    }

    /**
     * Sets where generation stops (every EOS id) and the PAD id, when there is one.
     *
     * @param config a generation config being built
     * @return {@code config}
     */
    public GenerationConfig.Builder configure(GenerationConfig.Builder config) {
        config.optEosTokenIds(eosIds);
        padId.ifPresent(config::optPadTokenId);
        return config;
    }

    /** {@inheritDoc} */
    @Override
    public boolean equals(Object o) {
        if (!(o instanceof SpecialTokens)) {
            return false;
        }
        SpecialTokens t = (SpecialTokens) o;
        return bosId.equals(t.bosId)
                && Arrays.equals(eosIds, t.eosIds)
                && appendedEosId == t.appendedEosId
                && padId.equals(t.padId)
                && addBos == t.addBos
                && addEos == t.addEos;
    }

    /** {@inheritDoc} */
    @Override
    public int hashCode() {
        return Objects.hash(bosId, Arrays.hashCode(eosIds), appendedEosId, padId, addBos, addEos);
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "SpecialTokens{bos="
                + (bosId.isPresent() ? bosId.getAsInt() : "none")
                + ", eos="
                + Arrays.toString(eosIds)
                + ", appendedEos="
                + appendedEosId
                + ", pad="
                + (padId.isPresent() ? padId.getAsInt() : "none")
                + ", addBos="
                + addBos
                + ", addEos="
                + addEos
                + "}";
    }

    /** The builder of {@link SpecialTokens}; {@link #setEosIds} is required. */
    public static final class Builder {

        private int bosId = -1;
        private int[] eosIds = {};
        private int appendedEosId = -1;
        private int padId = -1;
        private boolean addBos;
        private boolean addEos;

        Builder() {}

        /**
         * Sets the ids that end generation.
         *
         * @param eosIds at least one id, each &gt;= 0
         * @return this builder
         */
        public Builder setEosIds(int... eosIds) {
            this.eosIds = eosIds.clone();
            return this;
        }

        /**
         * Sets the beginning-of-sequence id.
         *
         * @param bosId an id &gt;= 0; default none
         * @return this builder
         */
        public Builder optBosId(int bosId) {
            this.bosId = requireId(bosId, "bosId");
            return this;
        }

        /**
         * Sets the id appended to a training example.
         *
         * @param appendedEosId an id &gt;= 0; default the first EOS id
         * @return this builder
         */
        public Builder optAppendedEosId(int appendedEosId) {
            this.appendedEosId = requireId(appendedEosId, "appendedEosId");
            return this;
        }

        /**
         * Sets the padding id.
         *
         * @param padId an id &gt;= 0; default none
         * @return this builder
         */
        public Builder optPadId(int padId) {
            this.padId = requireId(padId, "padId");
            return this;
        }

        /**
         * Sets whether encoding a prompt puts BOS first.
         *
         * @param addBos default false; true needs a BOS id
         * @return this builder
         */
        public Builder optAddBos(boolean addBos) {
            this.addBos = addBos;
            return this;
        }

        /**
         * Sets whether encoding puts the appended EOS last.
         *
         * @param addEos default false
         * @return this builder
         */
        public Builder optAddEos(boolean addEos) {
            this.addEos = addEos;
            return this;
        }

        /**
         * Validates and builds.
         *
         * @return the special tokens
         * @throws IllegalArgumentException if no EOS id is set, an EOS id is negative, or BOS is
         *     to be added but there is no BOS id
         */
        public SpecialTokens build() {
            if (eosIds.length == 0) {
                throw new IllegalArgumentException(
                        "no EOS id: set at least one id that ends generation (setEosIds)");
            }
            for (int id : eosIds) {
                requireId(id, "eosIds");
            }
            if (addBos && bosId < 0) {
                throw new IllegalArgumentException(
                        "addBos is true but there is no BOS id: set optBosId or addBos false");
            }
            return new SpecialTokens(this);
        }

        private static int requireId(int id, String what) {
            if (id < 0) {
                throw new IllegalArgumentException(what + " must be >= 0, got " + id);
            }
            return id;
        }
    }
}
