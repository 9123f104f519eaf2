package org.peft4j.models.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Writes a llama2.c tokenizer.bin by hand: int32 max length, then (float32 score, int32 length,
 * bytes) per token, in id order. Shared with the modules built on peft-models (test jar).
 */
public final class TinyVocab {

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    /**
     * Starts an empty vocabulary.
     *
     * @param maxTokenLength the header's longest token, in bytes
     */
    public TinyVocab(int maxTokenLength) {
        out.writeBytes(le(4).putInt(maxTokenLength).array());
    }

    /**
     * Starts the llama2.c layout: unk, BOS, EOS, then the 256 byte tokens at ids 3..258.
     *
     * @param maxTokenLength the header's longest token, in bytes
     * @return the vocabulary so far
     */
    public static TinyVocab withSpecialAndByteTokens(int maxTokenLength) {
        TinyVocab vocab = new TinyVocab(maxTokenLength);
        vocab.add("<unk>", 0f).add("\n<s>\n", 0f).add("\n</s>\n", 0f);
        for (int b = 0; b < 256; b++) {
            vocab.add(String.format("<0x%02X>", b), 0f);
        }
        return vocab;
    }

    /**
     * Adds the next token.
     *
     * @param piece the token's text
     * @param score its merge score
     * @return this vocabulary
     */
    public TinyVocab add(String piece, float score) {
        byte[] bytes = piece.getBytes(StandardCharsets.UTF_8);
        out.writeBytes(le(8).putFloat(score).putInt(bytes.length).array());
        out.writeBytes(bytes);
        return this;
    }

    /**
     * Adds an entry whose length field is given as is, with no bytes after it (malformed files).
     *
     * @param length the length field
     * @param score the score field
     * @return this vocabulary
     */
    public TinyVocab add(int length, float score) {
        out.writeBytes(le(8).putFloat(score).putInt(length).array());
        return this;
    }

    /**
     * Returns the file's bytes.
     *
     * @return the whole file
     */
    public byte[] bytes() {
        return out.toByteArray();
    }

    private static ByteBuffer le(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }
}
