package org.peft4j.models.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.CharSpan;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * A Hugging Face {@code tokenizer.json}, run by DJL's binding of the Rust {@code tokenizers}
 * library (natives in the jar, no download).
 *
 * <p>The native tokenizer never adds special tokens itself: {@link #encode} puts BOS and EOS where
 * asked, so both kinds of tokenizer behave alike. BOS and EOS are found by name in the file's
 * vocabulary and added tokens ({@code <s>}, {@code </s>} in Llama 2; {@code <|begin_of_text|>},
 * {@code <|end_of_text|>} or else {@code <|eot_id|>} in Llama 3), or given explicitly.
 */
public final class HuggingFaceLlamaTokenizer implements LlamaTokenizer {

    private static final List<String> BOS_NAMES = List.of("<s>", "<|begin_of_text|>");
    private static final List<String> EOS_NAMES = List.of("</s>", "<|end_of_text|>", "<|eot_id|>");

    /** No special tokens, truncation or padding from the native side: we add BOS/EOS ourselves. */
    private static final Map<String, String> OPTIONS =
            Map.of("addSpecialTokens", "false", "truncation", "false", "padding", "false");

    private final HuggingFaceTokenizer tokenizer;
    private final int bosId;
    private final int eosId;
    private final int vocabSize;

    private HuggingFaceLlamaTokenizer(
            HuggingFaceTokenizer tokenizer, int bosId, int eosId, int vocabSize) {
        this.tokenizer = tokenizer;
        this.bosId = bosId;
        this.eosId = eosId;
        this.vocabSize = vocabSize;
    }

    /**
     * Loads a {@code tokenizer.json}, finding BOS and EOS by their names in its vocabulary.
     *
     * @param file the {@code tokenizer.json} file
     * @return the tokenizer
     * @throws IOException if the file cannot be read or parsed, or has no known BOS or EOS token
     *     (then use {@link #load(Path, int, int)}); the message names the file
     */
    public static HuggingFaceLlamaTokenizer load(Path file) throws IOException {
        Map<String, Integer> vocab = readVocabulary(file);
        int bos = find(vocab, BOS_NAMES, "BOS", file);
        int eos = find(vocab, EOS_NAMES, "EOS", file);
        return open(file, bos, eos, vocabSize(vocab));
    }

    /**
     * Loads a {@code tokenizer.json} with the given BOS and EOS ids.
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
        int vocabSize = vocabSize(readVocabulary(file));
        for (int id : new int[] {bosId, eosId}) {
            if (id < 0 || id >= vocabSize) {
                String problem = ": BOS/EOS id %d is outside the vocabulary of size %d";
                throw new IOException(file + String.format(problem, id, vocabSize));
            }
        }
        return open(file, bosId, eosId, vocabSize);
    }

    private static HuggingFaceLlamaTokenizer open(Path file, int bos, int eos, int vocabSize)
            throws IOException {
        try {
            HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.newInstance(file, OPTIONS);
            return new HuggingFaceLlamaTokenizer(tokenizer, bos, eos, vocabSize);
        } catch (RuntimeException e) { // the Rust side reports a bad file as a RuntimeException
            throw new IOException(file + ": not a valid tokenizer.json: " + e.getMessage(), e);
        }
    }

    /** {@inheritDoc} */
    @Override
    public int[] encode(String text, boolean addBos, boolean addEos) {
        long[] ids = tokenizer.encode(text, false, false).getIds();
        int offset = addBos ? 1 : 0;
        int[] tokens = new int[offset + ids.length + (addEos ? 1 : 0)];
        if (addBos) {
            tokens[0] = bosId;
        }
        for (int i = 0; i < ids.length; i++) {
            tokens[offset + i] = Math.toIntExact(ids[i]);
        }
        if (addEos) {
            tokens[tokens.length - 1] = eosId;
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
        for (int id : ids) {
            checkId(id);
            if (id != bosId && id != eosId) {
                kept[n++] = id;
            }
        }
        return tokenizer.decode(Arrays.copyOf(kept, n), true);
    }

    /** {@inheritDoc} */
    @Override
    public int getBosTokenId() {
        return bosId;
    }

    /** {@inheritDoc} */
    @Override
    public int getEosTokenId() {
        return eosId;
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

    /**
     * Reads token name to id from {@code model.vocab} (an object for BPE and WordLevel, a list of
     * [piece, score] for Unigram) and {@code added_tokens}, which the native binding does not
     * expose.
     */
    private static Map<String, Integer> readVocabulary(Path file) throws IOException {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new IOException(file + ": cannot read as JSON: " + e.getMessage(), e);
        }
        Map<String, Integer> vocab = new HashMap<>();
        JsonNode model = root.path("model").path("vocab");
        if (model.isObject()) {
            for (Map.Entry<String, JsonNode> entry : model.properties()) {
                vocab.put(entry.getKey(), entry.getValue().asInt());
            }
        } else if (model.isArray()) {
            for (int id = 0; id < model.size(); id++) {
                vocab.put(model.get(id).path(0).asText(), id);
            }
        }
        for (JsonNode added : root.path("added_tokens")) {
            vocab.put(added.path("content").asText(), added.path("id").asInt());
        }
        if (vocab.isEmpty()) {
            throw new IOException(
                    file + ": no model.vocab or added_tokens; is this a tokenizer.json?");
        }
        return vocab;
    }

    private static int vocabSize(Map<String, Integer> vocab) {
        return vocab.values().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
    }

    private static int find(Map<String, Integer> vocab, List<String> names, String what, Path file)
            throws IOException {
        Optional<Integer> id = names.stream().map(vocab::get).filter(Objects::nonNull).findFirst();
        if (id.isEmpty()) {
            String problem = ": no %s token, looked for %s; pass the ids to %s";
            String fix = "HuggingFaceLlamaTokenizer.load(file, bos, eos)";
            throw new IOException(file + String.format(problem, what, names, fix));
        }
        return id.get();
    }
}
