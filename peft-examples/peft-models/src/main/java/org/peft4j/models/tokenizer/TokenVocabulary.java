package org.peft4j.models.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import org.peft4j.core.config.JsonConfigReader;

import java.util.HashMap;
import java.util.Map;
import java.util.OptionalInt;

/**
 * Token name to id, for mapping the tokens {@code tokenizer_config.json} names: from {@code
 * tokenizer.json} ({@code model.vocab} and {@code added_tokens}, which the native binding does not
 * expose) and {@code tokenizer_config.json}'s {@code added_tokens_decoder}, which lets a directory
 * without {@code tokenizer.json} (only configs, as some downloads) still map its special tokens.
 */
final class TokenVocabulary {

    private final Map<String, Integer> ids;
    private final int size;
    private final String sizeSource;
    private final boolean hasTokenizerJson;

    private TokenVocabulary(
            Map<String, Integer> ids, int size, String sizeSource, boolean hasTokenizerJson) {
        this.ids = ids;
        this.size = size;
        this.sizeSource = sizeSource;
        this.hasTokenizerJson = hasTokenizerJson;
    }

    /**
     * Collects the vocabulary from whichever files there are.
     *
     * @param tokenizerJson {@code tokenizer.json}, or null
     * @param tokenizerConfig {@code tokenizer_config.json}, or null
     * @param config {@code config.json}, or null: its {@code vocab_size} bounds the ids when there
     *     is no {@code tokenizer.json}
     * @return the vocabulary
     * @throws IllegalArgumentException if {@code tokenizer.json} has no vocabulary, or {@code
     *     added_tokens_decoder} has a key that is not an id
     */
    static TokenVocabulary of(
            JsonConfigReader tokenizerJson,
            JsonConfigReader tokenizerConfig,
            JsonConfigReader config) {
        Map<String, Integer> ids = new HashMap<>();
        if (tokenizerConfig != null) {
            addDecoder(ids, tokenizerConfig);
        }
        if (tokenizerJson != null) {
            Map<String, Integer> file = readTokenizerJson(tokenizerJson);
            ids.putAll(file); // tokenizer.json is what encodes: its ids win
            int size = file.values().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
            return new TokenVocabulary(ids, size, tokenizerJson.getSource(), true);
        }
        Integer size = config == null ? null : config.optInt("vocab_size");
        String source = config == null ? null : config.getSource() + " vocab_size";
        return new TokenVocabulary(ids, size == null ? -1 : size, source, false);
    }

    /**
     * Reads {@code model.vocab} (an object for BPE and WordLevel, a list of [piece, score] for
     * Unigram) and {@code added_tokens} of a {@code tokenizer.json}.
     *
     * @param file the parsed file
     * @return token name to id
     * @throws IllegalArgumentException if it has neither, naming the file
     */
    static Map<String, Integer> readTokenizerJson(JsonConfigReader file) {
        Map<String, Integer> vocab = new HashMap<>();
        JsonNode model = file.optNode("model");
        JsonNode entries = model == null ? null : model.get("vocab");
        if (entries != null && entries.isObject()) {
            for (Map.Entry<String, JsonNode> entry : entries.properties()) {
                vocab.put(entry.getKey(), entry.getValue().asInt());
            }
        } else if (entries != null && entries.isArray()) {
            for (int id = 0; id < entries.size(); id++) {
                vocab.put(entries.get(id).path(0).asText(), id);
            }
        }
        JsonNode added = file.optNode("added_tokens");
        if (added != null) {
            for (JsonNode token : added) {
                vocab.put(token.path("content").asText(), token.path("id").asInt());
            }
        }
        if (vocab.isEmpty()) {
            throw new IllegalArgumentException(
                    file.getSource()
                            + ": no model.vocab or added_tokens; is this a tokenizer.json?");
        }
        return vocab;
    }

    private static void addDecoder(Map<String, Integer> ids, JsonConfigReader tokenizerConfig) {
        JsonNode decoder = tokenizerConfig.optNode("added_tokens_decoder");
        if (decoder == null) {
            return;
        }
        for (Map.Entry<String, JsonNode> entry : decoder.properties()) {
            int id;
            try {
                id = Integer.parseInt(entry.getKey());
            } catch (NumberFormatException e) {
                throw tokenizerConfig.invalid(
                        "added_tokens_decoder",
                        "has the key \"" + entry.getKey() + "\", expected token ids as keys");
            }
            ids.put(entry.getValue().path("content").asText(), id);
        }
    }

    /**
     * Looks a token up.
     *
     * @param token the token's text
     * @return its id, or empty when not in the vocabulary
     */
    OptionalInt idOf(String token) {
        Integer id = ids.get(token);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    /**
     * Returns the number of ids.
     *
     * @return the highest id of {@code tokenizer.json} plus one, else {@code config.json}'s {@code
     *     vocab_size}, else -1 for unknown
     */
    int size() {
        return size;
    }

    /**
     * Returns where the size came from, for messages.
     *
     * @return a file name (and key)
     */
    String sizeSource() {
        return sizeSource;
    }

    /**
     * Says where a token was looked for, for messages.
     *
     * @return the files and keys searched
     */
    String searched() {
        return hasTokenizerJson
                ? "tokenizer.json's added_tokens and model.vocab"
                : "tokenizer_config.json's added_tokens_decoder (there is no tokenizer.json to look"
                        + " it up in; put the model's tokenizer.json next to it)";
    }
}
