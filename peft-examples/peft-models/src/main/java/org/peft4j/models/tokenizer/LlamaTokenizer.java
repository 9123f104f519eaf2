package org.peft4j.models.tokenizer;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Turns text into Llama token ids and back.
 *
 * <p>Two implementations: Hugging Face {@code tokenizer.json} files (through DJL's binding of the
 * Rust {@code tokenizers} library) and llama2.c {@code tokenizer.bin} files (implemented here).
 */
public interface LlamaTokenizer extends AutoCloseable {

    /**
     * Encodes text.
     *
     * @param text any text; characters outside the vocabulary fall back to byte tokens where the
     *     vocabulary has them
     * @param addBos whether to put the beginning-of-sequence id first (the tokenizer must have
     *     one)
     * @param addEos whether to put the appended EOS id ({@link SpecialTokens#getAppendedEosId()})
     *     last
     * @return the token ids
     * @throws IllegalStateException if {@code addBos} is true and there is no BOS id
     */
    int[] encode(String text, boolean addBos, boolean addEos);

    /**
     * Encodes text as it is, without BOS or EOS, and says which characters each token covers: what
     * a chat template's rendered text needs, whose special tokens are in the text itself and whose
     * assistant turns are found by character position.
     *
     * @param text any text; special tokens written in it (such as {@code <|im_start|>}) are read as
     *     those tokens
     * @return the tokens and their character spans
     * @throws UnsupportedOperationException if the tokenizer cannot tell spans (llama2.c's
     *     {@code tokenizer.bin}); the message says to use a {@code tokenizer.json}
     */
    default TokenSpans encodeWithSpans(String text) {
        throw new UnsupportedOperationException(
                getClass().getSimpleName()
                        + " cannot tell which characters each token covers; chat templates and"
                        + " conversation data need a Hugging Face tokenizer.json");
    }

    /**
     * Encodes a prompt to generate from: BOS first only where the tokenizer adds one ({@link
     * SpecialTokens#isAddBos()}: Llama yes, Qwen no), and never an EOS.
     *
     * @param text the prompt
     * @return the token ids
     */
    default int[] encodeStart(String text) {
        return encode(text, getSpecialTokens().isAddBos(), false);
    }

    /**
     * Decodes token ids into text, skipping BOS and every EOS id.
     *
     * @param ids token ids, for example a prompt followed by its continuation
     * @return the text
     */
    String decode(int[] ids);

    /**
     * Returns the special tokens: BOS, the ids that end generation, the EOS appended to training
     * examples, PAD, and whether BOS/EOS are added.
     *
     * @return the special tokens
     */
    SpecialTokens getSpecialTokens();

    /**
     * Returns the beginning-of-sequence id.
     *
     * @return the BOS id
     * @throws IllegalStateException if the tokenizer has none (Qwen's); see {@link
     *     #getSpecialTokens()}
     */
    default int getBosTokenId() {
        return getSpecialTokens()
                .getBosId()
                .orElseThrow(
                        () ->
                                new IllegalStateException(
                                        "this tokenizer has no BOS token (its files give no"
                                                + " bos_token_id or bos_token); start from text"));
    }

    /**
     * Returns the end-of-sequence id put at the end of a training example.
     *
     * @return the appended EOS id
     * @deprecated a model may stop at several ids: use {@link SpecialTokens#getEosIds()} to stop
     *     generation and {@link SpecialTokens#getAppendedEosId()} to end an example, from {@link
     *     #getSpecialTokens()}
     */
    @Deprecated
    default int getEosTokenId() {
        return getSpecialTokens().getAppendedEosId();
    }

    /**
     * Returns the number of tokens in the vocabulary.
     *
     * @return the vocabulary size
     */
    int getVocabSize();

    /** Releases native resources, if any. */
    @Override
    void close();

    /**
     * Loads a tokenizer file: {@code tokenizer.json} (Hugging Face) or a llama2.c {@code .bin}.
     *
     * @param file the tokenizer file
     * @return the tokenizer
     * @throws IOException if the file cannot be read or is malformed; the message names it
     */
    static LlamaTokenizer load(Path file) throws IOException {
        return TokenizerFiles.load(file);
    }

    /**
     * Finds the tokenizer next to a model: {@code tokenizer.json}, else {@code tokenizer.bin}.
     *
     * @param modelDir the model directory (or a model file, whose directory is searched)
     * @return the tokenizer
     * @throws IOException if there is none (the message says what was looked for) or it cannot be
     *     read
     */
    static LlamaTokenizer findNextTo(Path modelDir) throws IOException {
        return TokenizerFiles.findNextTo(modelDir);
    }
}
