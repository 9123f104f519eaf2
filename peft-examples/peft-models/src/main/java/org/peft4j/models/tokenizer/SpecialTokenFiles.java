package org.peft4j.models.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import org.peft4j.core.config.JsonConfigReader;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reads {@link SpecialTokens} from the Hugging Face files of a directory. For each token the first
 * file that gives it wins: {@code generation_config.json} (what {@code generate} uses), then
 * {@code config.json}, then the token {@code tokenizer_config.json} names. A value of the wrong
 * form is refused where it is found rather than skipped, so that a later file cannot silently
 * stand in for a broken one.
 */
final class SpecialTokenFiles {

    static final String TOKENIZER = "tokenizer.json";
    static final String TOKENIZER_CONFIG = "tokenizer_config.json";
    static final String GENERATION_CONFIG = "generation_config.json";
    static final String CONFIG = "config.json";

    private static final String EOS_FORM = "an integer token id or a non-empty list of them";

    private final JsonConfigReader generation;
    private final JsonConfigReader model;
    private final JsonConfigReader tokenizer;
    private final JsonConfigReader tokenizerJson;
    private final TokenVocabulary vocab;

    private SpecialTokenFiles(Path dir, Path tokenizerFile) throws IOException {
        generation = readIfPresent(dir.resolve(GENERATION_CONFIG));
        model = readIfPresent(dir.resolve(CONFIG));
        tokenizer = readIfPresent(dir.resolve(TOKENIZER_CONFIG));
        tokenizerJson = readIfPresent(tokenizerFile);
        vocab = TokenVocabulary.of(tokenizerJson, tokenizer, model);
    }

    /**
     * Tells whether a directory has the files that say which tokens are special.
     *
     * @param dir the directory of a {@code tokenizer.json}
     * @return whether it holds {@code tokenizer_config.json} or {@code generation_config.json}
     */
    static boolean present(Path dir) {
        return Files.isRegularFile(dir.resolve(TOKENIZER_CONFIG))
                || Files.isRegularFile(dir.resolve(GENERATION_CONFIG));
    }

    /**
     * Reads the special tokens.
     *
     * @param dir the directory of the config files
     * @param tokenizerFile its {@code tokenizer.json}, which may be missing
     * @return the special tokens
     * @throws IOException if a file cannot be read or no file gives an EOS
     * @throws IllegalArgumentException if a value is malformed; the message names file and key
     */
    static SpecialTokens read(Path dir, Path tokenizerFile) throws IOException {
        return new SpecialTokenFiles(dir, tokenizerFile).read(dir);
    }

    private SpecialTokens read(Path dir) throws IOException {
        SpecialTokens.Builder b = SpecialTokens.builder();
        int[] eos = eosIds(generation);
        eos = eos != null ? eos : eosIds(model);
        int named = tokenId(tokenizer, "eos_token");
        if (eos == null && named < 0) {
            throw new IOException(
                    dir
                            + ": no EOS token: none of generation_config.json and config.json"
                            + " (eos_token_id) or tokenizer_config.json (eos_token) gives one; add"
                            + " the model's generation_config.json or tokenizer_config.json");
        }
        eos = eos != null ? eos : new int[] {named};
        int appended = named >= 0 ? named : eos[0];
        b.setEosIds(eos).optAppendedEosId(appended);
        int bos = id(generation, model, "bos_token_id", "bos_token");
        if (bos >= 0) {
            b.optBosId(bos);
        }
        int pad = id(generation, model, "pad_token_id", "pad_token");
        if (pad >= 0) {
            b.optPadId(pad);
        }
        b.optAddBos(adds("add_bos_token", true, bos));
        b.optAddEos(adds("add_eos_token", false, appended));
        return b.build();
    }

    /**
     * Whether BOS (first) or EOS (last) is added: {@code tokenizer_config.json}'s flag, else
     * whether {@code tokenizer.json}'s post-processor puts that token there.
     */
    private boolean adds(String key, boolean first, int token) {
        Boolean flag = tokenizer == null ? null : tokenizer.optBoolean(key);
        if (flag == null) {
            return token >= 0 && templateToken(first) == token;
        }
        if (flag && token < 0) {
            throw tokenizer.invalid(
                    key,
                    "is true but no file gives a BOS id (bos_token_id or bos_token); name the"
                            + " token or set it false");
        }
        return flag;
    }

    /**
     * The id of the special token the post-processor's single-sequence template puts first (or
     * last), or -1. A {@code Sequence} post-processor (Llama 3: byte-level, then the template) is
     * searched for its template.
     */
    private int templateToken(boolean first) {
        JsonNode processor = tokenizerJson == null ? null : tokenizerJson.optNode("post_processor");
        if (processor != null && "Sequence".equals(processor.path("type").asText())) {
            JsonNode found = null;
            for (JsonNode step : processor.path("processors")) {
                if (found == null && isTemplate(step)) {
                    found = step;
                }
            }
            processor = found;
        }
        if (processor == null || !isTemplate(processor) || processor.path("single").isEmpty()) {
            return -1;
        }
        JsonNode single = processor.path("single");
        JsonNode end = single.get(first ? 0 : single.size() - 1).path("SpecialToken");
        if (end.isMissingNode()) {
            return -1;
        }
        String name = end.path("id").asText();
        JsonNode ids = processor.path("special_tokens").path(name).path("ids");
        if (ids.size() == 1 && ids.get(0).canConvertToInt()) {
            return ids.get(0).intValue();
        }
        return vocab.idOf(name).orElse(-1);
    }

    private static boolean isTemplate(JsonNode processor) {
        return "TemplateProcessing".equals(processor.path("type").asText());
    }

    /** The first of generation_config's and config.json's single id, else the named token's. */
    private int id(JsonConfigReader gen, JsonConfigReader cfg, String idKey, String tokenKey) {
        for (JsonConfigReader r : new JsonConfigReader[] {gen, cfg}) {
            JsonNode value = r == null ? null : r.optNode(idKey);
            if (value != null && value.isArray()) {
                throw r.invalid(
                        idKey,
                        "is the list "
                                + value
                                + ", but one token has one id; peft4j does not pick one:"
                                + " keep the id meant");
            }
            if (value != null) {
                return checked(r, idKey, value, "an integer token id");
            }
        }
        return tokenId(tokenizer, tokenKey);
    }

    /** An {@code eos_token_id}: one id or a non-empty list; null when absent. */
    private int[] eosIds(JsonConfigReader r) {
        JsonNode value = r == null ? null : r.optNode("eos_token_id");
        if (value == null) {
            return null;
        }
        if (!value.isArray()) {
            return new int[] {checked(r, "eos_token_id", value, EOS_FORM)};
        }
        if (value.isEmpty()) {
            throw r.invalid(
                    "eos_token_id", "is an empty list; give the id(s) that end generation");
        }
        int[] ids = new int[value.size()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = checked(r, "eos_token_id", value.get(i), EOS_FORM);
        }
        return ids;
    }

    /** A token id: an integer within the vocabulary. */
    private int checked(JsonConfigReader r, String key, JsonNode value, String form) {
        if (!value.isIntegralNumber() || !value.canConvertToInt()) {
            throw r.invalid(key, "must be " + form + ", found " + value + "; write the id(s)");
        }
        int id = value.intValue();
        if (id < 0 || vocab.size() >= 0 && id >= vocab.size()) {
            String size = vocab.size() < 0 ? "" : " of " + vocab.size() + " tokens";
            String from = vocab.sizeSource() == null ? "" : " (" + vocab.sizeSource() + ")";
            throw r.invalid(
                    key,
                    "holds "
                            + id
                            + ", outside the vocabulary"
                            + size
                            + from
                            + "; fix the id or use the files of the same model");
        }
        return id;
    }

    /**
     * The id of a token {@code tokenizer_config.json} names: a string or an AddedToken object
     * {@code {"content": ...}}; -1 when not named.
     */
    private int tokenId(JsonConfigReader r, String key) {
        JsonNode value = r == null ? null : r.optNode(key);
        if (value == null) {
            return -1;
        }
        JsonNode content = value.isObject() ? value.get("content") : value;
        if (content == null || !content.isTextual()) {
            throw r.invalid(
                    key, "must be a token string or {\"content\": \"...\"}, found " + value);
        }
        String name = content.textValue();
        return vocab.idOf(name)
                .orElseThrow(
                        () ->
                                r.invalid(
                                        key,
                                        "names \""
                                                + name
                                                + "\", which is not in "
                                                + vocab.searched()
                                                + "; fix the name or use the tokenizer files of"
                                                + " the same model"));
    }

    private static JsonConfigReader readIfPresent(Path file) throws IOException {
        return Files.isRegularFile(file) ? JsonConfigReader.read(file) : null;
    }
}
