package org.peft4j.models.tokenizer;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The tokenizer of llama2.c ({@code tokenizer.bin}): sentencepiece-style BPE by merge score.
 *
 * <p>File format (little-endian): {@code int32 max_token_length}, then until the end of the file,
 * one entry per token id: {@code float32 score, int32 length, length bytes of UTF-8}. Ids 0, 1, 2
 * are unk, BOS and EOS; pieces of the form {@code <0xXX>} are byte tokens.
 *
 * <p>Encoding, as llama2.c's {@code encode}: a dummy space is put before non-empty text, each
 * Unicode character becomes its token, or its UTF-8 bytes as byte tokens when the vocabulary does
 * not have it; then, as long as some adjacent pair concatenates to a piece of the vocabulary, the
 * pair whose piece has the highest score (the leftmost on ties) is merged. Decoding concatenates
 * the pieces, byte tokens as raw bytes, and drops one leading space of the piece after a BOS.
 */
public final class Llama2cTokenizer implements LlamaTokenizer {

    private static final int BOS = 1;
    private static final int EOS = 2;
    private static final SpecialTokens SPECIAL = SpecialTokens.llama2c();

    /** Pieces as ISO-8859-1 strings of their bytes: one char per byte, so no piece is mangled. */
    private final String[] pieces;

    private final float[] scores;
    private final Map<String, Integer> ids;

    /** The byte a byte token stands for, or -1 for other tokens; indexed by id. */
    private final int[] byteOf;

    /** The id of the byte token of each byte value, or unk (0) if the vocabulary has none. */
    private final int[] byteTokens = new int[256];

    private Llama2cTokenizer(String[] pieces, float[] scores) {
        this.pieces = pieces;
        this.scores = scores;
        ids = new HashMap<>(pieces.length * 2);
        byteOf = new int[pieces.length];
        for (int id = pieces.length - 1; id >= 0; id--) {
            ids.put(pieces[id], id); // the lowest id wins if a piece repeats
        }
        Arrays.fill(byteOf, -1);
        for (int b = 0; b < 256; b++) {
            Integer id = ids.get(String.format("<0x%02X>", b));
            byteTokens[b] = id == null ? 0 : id;
            if (id != null) {
                byteOf[id] = b;
            }
        }
    }

    /**
     * Reads a llama2.c {@code tokenizer.bin}.
     *
     * @param file the tokenizer file
     * @return the tokenizer; the vocabulary size is the number of entries in the file
     * @throws IOException if the file cannot be read, or is truncated or malformed; the message
     *     names the file and what is wrong
     */
    public static Llama2cTokenizer load(Path file) throws IOException {
        ByteBuffer buf = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        String what = file + ": not a llama2.c tokenizer.bin: ";
        if (buf.remaining() < 4) {
            throw new IOException(what + "too short for the header (" + buf.remaining() + " B)");
        }
        int maxLength = buf.getInt();
        if (maxLength <= 0) {
            throw new IOException(what + "max_token_length is " + maxLength + ", expected > 0");
        }
        List<String> pieces = new ArrayList<>();
        List<Float> scores = new ArrayList<>();
        while (buf.hasRemaining()) {
            int id = pieces.size();
            if (buf.remaining() < 8) {
                throw new IOException(what + "truncated in the header of token " + id);
            }
            scores.add(buf.getFloat());
            int length = buf.getInt();
            if (length < 0 || length > maxLength) {
                String problem = "token %d has length %d, expected 0..%d (max_token_length)";
                throw new IOException(what + String.format(problem, id, length, maxLength));
            }
            if (buf.remaining() < length) {
                String problem = "truncated in token %d: %d B declared, %d B left";
                throw new IOException(what + String.format(problem, id, length, buf.remaining()));
            }
            byte[] bytes = new byte[length];
            buf.get(bytes);
            pieces.add(new String(bytes, StandardCharsets.ISO_8859_1));
        }
        if (pieces.size() <= EOS) {
            throw new IOException(
                    what + pieces.size() + " tokens, expected at least unk, BOS and EOS");
        }
        float[] scoreArray = new float[scores.size()];
        for (int i = 0; i < scoreArray.length; i++) {
            scoreArray[i] = scores.get(i);
        }
        return new Llama2cTokenizer(pieces.toArray(new String[0]), scoreArray);
    }

    /** {@inheritDoc} */
    @Override
    public int[] encode(String text, boolean addBos, boolean addEos) {
        int[] tokens = new int[2 + 4 * (text.length() + 1)]; // at most 4 byte tokens per char
        int n = 0;
        if (addBos) {
            tokens[n++] = BOS;
        }
        int first = n;
        // the dummy prefix goes through the same lookup, so a vocabulary without " " still works
        String prefixed = text.isEmpty() ? text : " " + text;
        for (int cp : prefixed.codePoints().toArray()) {
            String ch = bytesOf(new String(Character.toChars(cp)));
            Integer id = ids.get(ch);
            if (id != null) {
                tokens[n++] = id;
            } else {
                for (int i = 0; i < ch.length(); i++) {
                    tokens[n++] = byteTokens[ch.charAt(i)];
                }
            }
        }
        n = first + merge(tokens, first, n - first);
        if (addEos) {
            tokens[n++] = EOS;
        }
        return Arrays.copyOf(tokens, n);
    }

    /**
     * Merges pairs in {@code tokens[from, from + n)} by score until none is in the vocabulary. Byte
     * tokens never merge: their pieces are spelt {@code <0xXX>}, as in llama2.c.
     */
    private int merge(int[] tokens, int from, int n) {
        while (true) {
            float bestScore = Float.NEGATIVE_INFINITY;
            int bestId = -1;
            int bestAt = -1;
            for (int i = from; i < from + n - 1; i++) {
                Integer id = ids.get(pieces[tokens[i]] + pieces[tokens[i + 1]]);
                if (id != null && (bestAt < 0 || scores[id] > bestScore)) {
                    bestScore = scores[id];
                    bestId = id;
                    bestAt = i;
                }
            }
            if (bestAt < 0) {
                return n;
            }
            tokens[bestAt] = bestId;
            System.arraycopy(tokens, bestAt + 2, tokens, bestAt + 1, from + n - bestAt - 2);
            n--;
        }
    }

    /**
     * {@inheritDoc}
     *
     * <p>As llama2.c, the piece right after a BOS loses one leading space (the dummy prefix of
     * {@link #encode}); without a BOS the dummy space stays. Byte tokens are collected as bytes and
     * decoded together, so a character split into byte tokens comes back whole.
     *
     * @throws IllegalArgumentException if an id is outside the vocabulary
     */
    @Override
    public String decode(int[] ids) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int previous = -1;
        for (int id : ids) {
            checkId(id);
            if (id != BOS && id != EOS) {
                boolean stripSpace = previous == BOS;
                if (byteOf[id] >= 0) {
                    if (!(stripSpace && byteOf[id] == ' ')) {
                        out.write(byteOf[id]);
                    }
                } else {
                    String piece = pieces[id];
                    int start = stripSpace && piece.startsWith(" ") ? 1 : 0;
                    byte[] bytes = piece.getBytes(StandardCharsets.ISO_8859_1);
                    out.write(bytes, start, bytes.length - start);
                }
            }
            previous = id;
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    /**
     * Returns the text of a token as stored in the file (byte tokens as {@code <0xXX>}).
     *
     * @param id the token id
     * @return the piece, decoded as UTF-8
     * @throws IllegalArgumentException if the id is outside the vocabulary
     */
    public String getPiece(int id) {
        checkId(id);
        return new String(pieces[id].getBytes(StandardCharsets.ISO_8859_1), StandardCharsets.UTF_8);
    }

    /**
     * Returns the merge score of a token: of two candidate merges, the higher score goes first.
     *
     * @param id the token id
     * @return the score stored in the file
     * @throws IllegalArgumentException if the id is outside the vocabulary
     */
    public float getScore(int id) {
        checkId(id);
        return scores[id];
    }

    /**
     * {@inheritDoc}
     *
     * <p>llama2.c's convention: BOS 1, added to prompts; EOS 2; no PAD.
     */
    @Override
    public SpecialTokens getSpecialTokens() {
        return SPECIAL;
    }

    /** {@inheritDoc} */
    @Override
    public int getVocabSize() {
        return pieces.length;
    }

    /** Does nothing: this tokenizer holds no native resources. */
    @Override
    public void close() {}

    private void checkId(int id) {
        if (id < 0 || id >= pieces.length) {
            throw new IllegalArgumentException(
                    "token id " + id + " is outside the vocabulary of size " + pieces.length);
        }
    }

    /** The UTF-8 bytes of text, one char per byte, to look up in {@link #ids}. */
    private static String bytesOf(String text) {
        return new String(text.getBytes(StandardCharsets.UTF_8), StandardCharsets.ISO_8859_1);
    }
}
