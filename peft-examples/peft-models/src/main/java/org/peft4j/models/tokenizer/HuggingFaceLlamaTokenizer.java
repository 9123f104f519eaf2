package org.peft4j.models.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.CharSpan;

import org.peft4j.core.config.JsonConfigReader;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.stream.IntStream;

/**
 * A Hugging Face {@code tokenizer.json}, run by DJL's binding of the Rust {@code tokenizers}
 * library (natives in the jar, no download).
 *
 * <p>The native tokenizer never adds special tokens itself: {@link #encode} puts BOS and EOS where
 * asked, so both kinds of tokenizer behave alike. The special tokens come from the files next to
 * {@code tokenizer.json} ({@link SpecialTokens#fromPretrained}) when there is a {@code
 * tokenizer_config.json} or {@code generation_config.json}. A bare {@code tokenizer.json} (no
 * such file beside it) falls back to finding BOS and EOS by name in its vocabulary ({@code <s>},
 * {@code </s>} in Llama 2; {@code <|begin_of_text|>}, {@code <|end_of_text|>} or else {@code
 * <|eot_id|>} in Llama 3), BOS added, no PAD; or they are given explicitly.
 */
public final class HuggingFaceLlamaTokenizer implements LlamaTokenizer {

    /** Fallback names, for a bare {@code tokenizer.json} only. */
    private static final List<String> BOS_NAMES = List.of("<s>", "<|begin_of_text|>");

    private static final List<String> EOS_NAMES = List.of("</s>", "<|end_of_text|>", "<|eot_id|>");

    /** No special tokens, truncation or padding from the native side: we add BOS/EOS ourselves. */
    private static final Map<String, String> OPTIONS =
            Map.of("addSpecialTokens", "false", "truncation", "false", "padding", "false");

    private final HuggingFaceTokenizer tokenizer;
    private final SpecialTokens special;
    private final int vocabSize;

    private HuggingFaceLlamaTokenizer(
            HuggingFaceTokenizer tokenizer, SpecialTokens special, int vocabSize) {
        this.tokenizer = tokenizer;
        this.special = special;
        this.vocabSize = vocabSize;
    }

    /**
     * Loads a model's or tokenizer's directory: {@code tokenizer.json} with the special tokens of
     * {@link SpecialTokens#fromPretrained}.
     *
     * @param dir the directory
     * @return the tokenizer
     * @throws IOException if {@code tokenizer.json} is missing or invalid, or a special-token file
     *     is malformed or gives no EOS; the message names the file and key
     */
    public static HuggingFaceLlamaTokenizer fromPretrained(Path dir) throws IOException {
        Path file = dir.resolve(SpecialTokenFiles.TOKENIZER);
        if (!Files.isRegularFile(file)) {
            throw new NoSuchFileException(file.toString(), null, "no tokenizer.json in " + dir);
        }
        return open(file, orIOException(() -> SpecialTokenFiles.read(dir, file)));
    }

    /**
     * Loads a {@code tokenizer.json}: the special tokens come from the {@code
     * tokenizer_config.json}, {@code generation_config.json} and {@code config.json} beside it
     * when one of the first two is there, else from the fallback names.
     *
     * @param file the {@code tokenizer.json} file
     * @return the tokenizer
     * @throws IOException if a file cannot be read or parsed, a special-token file is malformed,
     *     or a bare file has no known BOS or EOS name (then use {@link #load(Path,
     *     SpecialTokens)}); the message names the file
     */
    public static HuggingFaceLlamaTokenizer load(Path file) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        if (SpecialTokenFiles.present(dir)) {
            return open(file, orIOException(() -> SpecialTokenFiles.read(dir, file)));
        }
        Map<String, Integer> vocab = readVocabulary(file);
        int bos = find(vocab, BOS_NAMES, "BOS", file);
        int eos = find(vocab, EOS_NAMES, "EOS", file);
        return open(file, SpecialTokens.builder().optBosId(bos).setEosIds(eos).optAddBos(true));
    }

    /**
     * Loads a {@code tokenizer.json} with the given BOS and EOS ids, BOS added.
     *
     * @param file the {@code tokenizer.json} file
     * @param bosId the beginning-of-sequence id
     * @param eosId the end-of-sequence id
     * @return the tokenizer
     * @throws IOException if the file cannot be read or parsed, or an id is outside its vocabulary;
     *     the message names the file
     */
    public static HuggingFaceLlamaTokenizer load(Path file, int bosId, int eosId)
            throws IOException {
        if (bosId < 0 || eosId < 0) {
            throw new IOException(file + ": BOS/EOS ids must be >= 0, got " + bosId + ", " + eosId);
        }
        return load(
                file,
                SpecialTokens.builder().optBosId(bosId).setEosIds(eosId).optAddBos(true).build());
    }

    /**
     * Loads a {@code tokenizer.json} with the given special tokens.
     *
     * @param file the {@code tokenizer.json} file
     * @param special the special tokens
     * @return the tokenizer
     * @throws IOException if the file cannot be read or parsed, or an id is outside its vocabulary;
     *     the message names the file
     */
    public static HuggingFaceLlamaTokenizer load(Path file, SpecialTokens special)
            throws IOException {
        return open(file, special);
    }

    private static HuggingFaceLlamaTokenizer open(Path file, SpecialTokens.Builder special)
            throws IOException {
        return open(file, special.build());
    }

    private static HuggingFaceLlamaTokenizer open(Path file, SpecialTokens special)
            throws IOException {
        int vocabSize = vocabSize(readVocabulary(file));
        for (int id : ids(special)) {
            if (id >= vocabSize) {
                String problem = ": special token id %d is outside the vocabulary of size %d";
                throw new IOException(file + String.format(problem, id, vocabSize));
            }
        }
        try {
            HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.newInstance(file, OPTIONS);
            return new HuggingFaceLlamaTokenizer(tokenizer, special, vocabSize);
        } catch (RuntimeException e) { // the Rust side reports a bad file as a RuntimeException
            throw new IOException(file + ": not a valid tokenizer.json: " + e.getMessage(), e);
        }
    }

    /** Every id the special tokens hold. */
    private static int[] ids(SpecialTokens special) {
        IntStream.Builder ids = IntStream.builder();
        special.getBosId().ifPresent(ids::add);
        special.getPadId().ifPresent(ids::add);
        Arrays.stream(special.getEosIds()).forEach(ids::add);
        ids.add(special.getAppendedEosId());
        return ids.build().toArray();
    }

    /** {@inheritDoc} */
    @Override
    public int[] encode(String text, boolean addBos, boolean addEos) {
        long[] ids = tokenizer.encode(text, false, false).getIds();
        int offset = addBos ? 1 : 0;
        int[] tokens = new int[offset + ids.length + (addEos ? 1 : 0)];
        if (addBos) {
            tokens[0] = getBosTokenId();
        }
        for (int i = 0; i < ids.length; i++) {
            tokens[offset + i] = Math.toIntExact(ids[i]);
        }
        if (addEos) {
            tokens[tokens.length - 1] = special.getAppendedEosId();
        }
        return tokens;
    }

    /**
     * {@inheritDoc}
     *
     * <p>The native tokenizer counts offsets in Unicode code points; they are turned into the Java
     * string's UTF-16 indices here, so that a character outside the Basic Multilingual Plane
     * (an emoji) does not shift every later span.
     */
    @Override
    public TokenSpans encodeWithSpans(String text) {
        Encoding encoding = tokenizer.encode(text, false, false);
        long[] ids = encoding.getIds();
        CharSpan[] spans = encoding.getCharTokenSpans();
        int[] utf16 = new int[text.codePointCount(0, text.length()) + 1];
        for (int cp = 0, index = 0; cp < utf16.length; cp++) {
            utf16[cp] = index;
            if (index < text.length()) {
                index += Character.charCount(text.codePointAt(index));
            }
        }
        int[] tokens = new int[ids.length];
        int[] starts = new int[ids.length];
        int[] ends = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            tokens[i] = Math.toIntExact(ids[i]);
            if (spans[i] != null) {
                starts[i] = utf16[spans[i].getStart()];
                ends[i] = utf16[spans[i].getEnd()];
            } else { // nothing of the text: an empty span where the previous token ended
                starts[i] = i == 0 ? 0 : ends[i - 1];
                ends[i] = starts[i];
            }
        }
        return new TokenSpans(tokens, starts, ends);
    }

    /**
     * {@inheritDoc}
     *
     * <p>Also skips the other tokens that the file marks special; spacing is the file's decoder's
     * (for Llama 2, one leading space is dropped).
     *
     * @throws IllegalArgumentException if an id is outside the vocabulary
     */
    @Override
    public String decode(int[] ids) {
        // BOS/EOS given by id need not be marked special in the file, so drop them here
        long[] kept = new long[ids.length];
        int n = 0;
        int bos = special.getBosId().orElse(-1);
        for (int id : ids) {
            checkId(id);
            if (id != bos && !special.isEos(id) && id != special.getAppendedEosId()) {
                kept[n++] = id;
            }
        }
        return tokenizer.decode(Arrays.copyOf(kept, n), true);
    }

    /** {@inheritDoc} */
    @Override
    public SpecialTokens getSpecialTokens() {
        return special;
    }

    /**
     * {@inheritDoc}
     *
     * <p>The model's vocabulary and the added tokens: the highest id plus one.
     */
    @Override
    public int getVocabSize() {
        return vocabSize;
    }

    /** Closes the native tokenizer. */
    @Override
    public void close() {
        tokenizer.close();
    }

    private void checkId(int id) {
        if (id < 0 || id >= vocabSize) {
            throw new IllegalArgumentException(
                    "token id " + id + " is outside the vocabulary of size " + vocabSize);
        }
    }

    /** Token name to id of a {@code tokenizer.json}, with errors as IOException. */
    private static Map<String, Integer> readVocabulary(Path file) throws IOException {
        return orIOException(() -> TokenVocabulary.readTokenizerJson(JsonConfigReader.read(file)));
    }

    /** Reading a tokenizer is I/O to callers: its malformed content becomes an IOException. */
    private static <T> T orIOException(IOSupplier<T> read) throws IOException {
        try {
            return read.get();
        } catch (IllegalArgumentException e) {
            throw new IOException(e.getMessage(), e);
        }
    }

    /** A read that may throw IOException. */
    private interface IOSupplier<T> {
        T get() throws IOException;
    }

    private static int vocabSize(Map<String, Integer> vocab) {
        return vocab.values().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
    }

    private static int find(Map<String, Integer> vocab, List<String> names, String what, Path file)
            throws IOException {
        Optional<Integer> id = names.stream().map(vocab::get).filter(Objects::nonNull).findFirst();
        if (id.isEmpty()) {
            String problem = ": no %s token, looked for %s; pass the ids to %s";
            String fix =
                    "HuggingFaceLlamaTokenizer.load(file, bos, eos), or put the model's"
                            + " tokenizer_config.json next to it";
            throw new IOException(file + String.format(problem, what, names, fix));
        }
        return id.get();
    }
}
