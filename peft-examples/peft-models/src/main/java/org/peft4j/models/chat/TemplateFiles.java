package org.peft4j.models.chat;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads a model directory's chat template and special tokens as transformers does: the template
 * from {@code chat_template.jinja} when that file exists (transformers gives the separate file
 * priority over the config), else from {@code tokenizer_config.json}'s {@code chat_template} (a
 * string, or a list of named templates of which the one named {@code default} is used); the
 * special tokens from {@code tokenizer_config.json}.
 */
final class TemplateFiles {

    /** The separate template file that recent transformers versions save. */
    static final String TEMPLATE_FILE = "chat_template.jinja";
    /** The tokenizer configuration. */
    static final String CONFIG_FILE = "tokenizer_config.json";

    private static final List<String> TOKEN_KEYS =
            List.of("bos_token", "eos_token", "unk_token", "pad_token");

    private final Path source;
    private final String text;
    private final Map<String, String> specialTokens;

    /**
     * Holds a template read from elsewhere.
     *
     * @param source the file the text came from
     * @param text the Jinja source
     * @param specialTokens token variables such as {@code bos_token}
     */
    TemplateFiles(Path source, String text, Map<String, String> specialTokens) {
        this.source = source;
        this.text = text;
        this.specialTokens = Map.copyOf(specialTokens);
    }

    /**
     * Reads a model directory.
     *
     * @param dir the directory holding the tokenizer files
     * @return what it holds
     * @throws ChatTemplateException if it holds no template, or a file cannot be read
     */
    static TemplateFiles read(Path dir) {
        Path file = dir.resolve(TEMPLATE_FILE);
        Path configFile = dir.resolve(CONFIG_FILE);
        JsonNode config = Files.isRegularFile(configFile) ? json(configFile) : null;
        Map<String, String> tokens = new LinkedHashMap<>();
        if (config != null) {
            for (String key : TOKEN_KEYS) {
                String token = token(config.get(key), configFile, key);
                if (token != null) {
                    tokens.put(key, token);
                }
            }
        }
        if (Files.isRegularFile(file)) {
            return new TemplateFiles(file, text(file), Map.copyOf(tokens));
        }
        if (config != null && config.hasNonNull("chat_template")) {
            String text = fromConfig(config.get("chat_template"), configFile);
            return new TemplateFiles(configFile, text, Map.copyOf(tokens));
        }
        if (!Files.isDirectory(dir)) {
            throw new ChatTemplateException(
                    dir + " is not a directory: pass the model (or tokenizer) directory that holds "
                            + CONFIG_FILE + " or " + TEMPLATE_FILE);
        }
        throw new ChatTemplateException(
                dir + " has no chat template: neither " + TEMPLATE_FILE + " nor a chat_template in "
                        + (config == null ? CONFIG_FILE + " (absent)" : CONFIG_FILE)
                        + "; this is a base model without a chat format, or copy the chat model's "
                        + TEMPLATE_FILE + " into the directory");
    }

    /**
     * Returns the file the template came from.
     *
     * @return {@code chat_template.jinja} or {@code tokenizer_config.json}
     */
    Path getSource() {
        return source;
    }

    /**
     * Returns the template.
     *
     * @return the Jinja source
     */
    String getText() {
        return text;
    }

    /**
     * Returns the special tokens the template may use ({@code bos_token}, {@code eos_token},
     * {@code unk_token}, {@code pad_token}; those the config sets).
     *
     * @return name to token text
     */
    Map<String, String> getSpecialTokens() {
        return specialTokens;
    }

    private static String fromConfig(JsonNode template, Path configFile) {
        if (template.isTextual()) {
            return template.asText();
        }
        if (template.isArray()) {
            List<String> names = new ArrayList<>();
            for (JsonNode named : template) {
                String name = named.path("name").asText(null);
                names.add(name);
                if ("default".equals(name) && named.path("template").isTextual()) {
                    return named.get("template").asText();
                }
            }
            throw new ChatTemplateException(
                    configFile + ": chat_template lists templates " + names
                            + " but none named \"default\" (with a \"template\" string), which is"
                            + " the one used; add one or put the template in " + TEMPLATE_FILE);
        }
        throw new ChatTemplateException(
                configFile + ": chat_template must be a string or a list of {name, template},"
                        + " found " + template.getNodeType());
    }

    private static String token(JsonNode node, Path configFile, String key) {
        if (node == null || node.isNull()) {
            return null;
        }
        if (node.isTextual()) {
            return node.asText();
        }
        if (node.isObject() && node.path("content").isTextual()) {
            // a serialized AddedToken
            return node.get("content").asText();
        }
        throw new ChatTemplateException(
                configFile + ": " + key + " must be a string or an object with a \"content\""
                        + " string, found " + node);
    }

    private static JsonNode json(Path file) {
        try {
            return new ObjectMapper().readTree(text(file));
        } catch (JsonProcessingException e) {
            throw new ChatTemplateException(
                    file + " is not valid JSON (line " + e.getLocation().getLineNr() + ", column "
                            + e.getLocation().getColumnNr() + "): " + e.getOriginalMessage()
                            + "; restore the file from the model's files",
                    e);
        }
    }

    private static String text(Path file) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new ChatTemplateException(
                    "cannot read " + file + " (" + e + "); check that the file is there and"
                            + " readable",
                    e);
        }
    }
}
