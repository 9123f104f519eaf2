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
     * @param addBos whether to put the beginning-of-sequence id first
     * @param addEos whether to put the end-of-sequence id last
     * @return the token ids
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
     * Decodes token ids into text, skipping the special BOS and EOS tokens.
     *
     * @param ids token ids, for example a prompt followed by its continuation
     * @return the text
     */
    String decode(int[] ids);

    /**
     * Returns the beginning-of-sequence id.
     *
     * @return the BOS id
     */
    int getBosTokenId();

    /**
     * Returns the end-of-sequence id.
     *
     * @return the EOS id
     */
    int getEosTokenId();

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
