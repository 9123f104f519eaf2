package org.peft4j.cli.demo;

import org.peft4j.core.io.AtomicFiles;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * The demo's character vocabulary, written as a llama2.c {@code tokenizer.bin} so that the regular
 * tokenizer loader (and {@code peft4j generate}) reads it: ids 0, 1, 2 are unk, BOS and EOS, then
 * one token per character. With no multi-character pieces, encoding is one token per character.
 */
public final class CharVocabulary {

    /** The characters, in id order from 3. */
    public static final String CHARACTERS =
            " abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:>0123456789";

    private CharVocabulary() {}

    /**
     * Returns the vocabulary size.
     *
     * @return 3 specials plus the characters
     */
    public static int size() {
        return 3 + CHARACTERS.length();
    }

    /**
     * Writes the vocabulary as a llama2.c tokenizer file.
     *
     * @param file the {@code tokenizer.bin} to write (atomically)
     * @throws IOException if writing fails
     */
    public static void write(Path file) throws IOException {
        String[] pieces = new String[size()];
        pieces[0] = "<unk>";
        pieces[1] = "\n<s>\n";
        pieces[2] = "\n</s>\n";
        for (int i = 0; i < CHARACTERS.length(); i++) {
            pieces[3 + i] = String.valueOf(CHARACTERS.charAt(i));
        }
        ByteBuffer buf = ByteBuffer.allocate(4 + pieces.length * 32).order(ByteOrder.LITTLE_ENDIAN);
        buf.putInt(8);
        for (String piece : pieces) {
            byte[] bytes = piece.getBytes(StandardCharsets.UTF_8);
            buf.putFloat(0f).putInt(bytes.length).put(bytes);
        }
        buf.flip();
        AtomicFiles.write(file, channel -> channel.write(buf));
    }
}
