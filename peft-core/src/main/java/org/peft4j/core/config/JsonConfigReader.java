package org.peft4j.core.config;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Typed access to the fields of one JSON config object, with errors that name the source and the
 * field.
 *
 * <p>The reader remembers which keys were read. {@link #warnAboutUnreadKeys()} logs the others as
 * ignored, so that files written by newer versions (or by Hugging Face PEFT, with fields this
 * library has no use for) still load, while a typo is visible in the log. A JSON {@code null} reads
 * as absent.
 */
public final class JsonConfigReader {

    private static final Logger logger = LoggerFactory.getLogger(JsonConfigReader.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final ObjectNode node;
    private final String source;
    private final Set<String> read = new LinkedHashSet<>();

    private JsonConfigReader(ObjectNode node, String source) {
        this.node = node;
        this.source = source;
    }

    /**
     * Parses a JSON object.
     *
     * @param json the text of a JSON object
     * @param source where the text came from, for messages (a path, or {@code "<string>"})
     * @return a reader over the object
     * @throws IllegalArgumentException if the text is not a JSON object; the message names the
     *     source, line and column
     */
    public static JsonConfigReader parse(String json, String source) {
        JsonNode tree;
        try {
            tree = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            String where =
                    e.getLocation() == null
                            ? ""
                            : " at line "
                                    + e.getLocation().getLineNr()
                                    + ", column "
                                    + e.getLocation().getColumnNr();
            throw new IllegalArgumentException(
                    source + ": not valid JSON" + where + ": " + e.getOriginalMessage(), e);
        }
        if (tree == null || !tree.isObject()) {
            throw new IllegalArgumentException(source + ": expected a JSON object");
        }
        return new JsonConfigReader((ObjectNode) tree, source);
    }

    /**
     * Reads and parses a JSON file, which must be UTF-8 (as JSON files exchanged between systems
     * must be, RFC 8259).
     *
     * <p>Bytes that are not UTF-8 are refused rather than replaced: a replaced byte inside a path
     * or a name would silently select other modules or load another base model.
     *
     * @param file a JSON file holding one object
     * @return a reader over the object
     * @throws NoSuchFileException if the file does not exist
     * @throws IOException if the file cannot be read
     * @throws IllegalArgumentException if the file is not UTF-8 (the message names the byte offset,
     *     line and byte) or not a JSON object
     */
    public static JsonConfigReader read(Path file) throws IOException {
        return parse(decodeUtf8(Files.readAllBytes(file), file.toString()), file.toString());
    }

    /**
     * Decodes UTF-8 strictly.
     *
     * @param bytes the file's bytes
     * @param source the file, for the message
     * @return the text
     * @throws IllegalArgumentException at the first byte that is not part of a UTF-8 character,
     *     naming its offset, line and value
     */
    public static String decodeUtf8(byte[] bytes, String source) {
        CharsetDecoder decoder =
                StandardCharsets.UTF_8
                        .newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length);
        CoderResult result = decoder.decode(in, out, true);
        if (!result.isError()) {
            result = decoder.flush(out);
        }
        if (result.isError()) {
            int offset = in.position();
            int line = 1;
            for (int i = 0; i < offset; i++) {
                if (bytes[i] == '\n') {
                    line++;
                }
            }
            StringBuilder found = new StringBuilder();
            for (int i = offset; i < Math.min(bytes.length, offset + result.length()); i++) {
                found.append(found.length() == 0 ? "" : " ")
                        .append(String.format(Locale.ROOT, "0x%02X", bytes[i] & 0xFF));
            }
            throw new IllegalArgumentException(
                    source
                            + ": not UTF-8: byte offset "
                            + offset
                            + " (line "
                            + line
                            + ") holds "
                            + found
                            + ", which is not a UTF-8 character; save the file as UTF-8 (JSON"
                            + " config files must be UTF-8)");
        }
        out.flip();
        return out.toString();
    }

    /**
     * Joins two objects into one reader: every field of {@code first}, and those of {@code second}
     * that {@code first} lacks. Check first that the fields both hold agree (see {@link
     * ConfigPair}); this only takes the union.
     *
     * @param first the object whose fields win
     * @param second the object that fills in the rest
     * @param source where the joined fields came from, for messages
     * @return a reader over the union
     */
    public static JsonConfigReader union(
            JsonConfigReader first, JsonConfigReader second, String source) {
        ObjectNode union = second.node.deepCopy();
        union.setAll(first.node.deepCopy());
        return new JsonConfigReader(union, source);
    }

    /**
     * Returns a new reader over a copy of the same object, with no field read yet.
     *
     * @return the reader
     */
    public JsonConfigReader fresh() {
        return new JsonConfigReader(node.deepCopy(), source);
    }

    /**
     * Returns a new reader over a copy of the object without some fields.
     *
     * @param keys the fields to leave out
     * @return the reader, with no field read yet
     */
    public JsonConfigReader without(String... keys) {
        ObjectNode copy = node.deepCopy();
        for (String key : keys) {
            copy.remove(key);
        }
        return new JsonConfigReader(copy, source);
    }

    /**
     * Returns where the JSON came from.
     *
     * @return the source given when parsing
     */
    public String getSource() {
        return source;
    }

    /**
     * Tests whether a key is present with a value other than {@code null}.
     *
     * @param key the field name
     * @return whether the field is set
     */
    public boolean has(String key) {
        JsonNode value = node.get(key);
        return value != null && !value.isNull();
    }

    /**
     * Returns a field's JSON value without marking it as read, for messages that quote it.
     *
     * @param key the field name
     * @return the value, or {@code null} when absent or {@code null}
     */
    public JsonNode peek(String key) {
        JsonNode value = node.get(key);
        return value == null || value.isNull() ? null : value;
    }

    /**
     * Returns the first of some field names that is set.
     *
     * @param keys field names, in order of preference
     * @return the first set name, or {@code null} when none is
     */
    public String firstPresent(String... keys) {
        for (String key : keys) {
            if (has(key)) {
                return key;
            }
        }
        return null;
    }

    /**
     * Reads an integer field.
     *
     * @param key the field name
     * @return the value, or {@code null} when absent
     * @throws IllegalArgumentException if the value is not an integer
     */
    public Integer optInt(String key) {
        JsonNode value = take(key);
        if (value == null) {
            return null;
        }
        if (!value.isIntegralNumber() || !value.canConvertToInt()) {
            throw wrongType(key, "an integer", value);
        }
        return value.intValue();
    }

    /**
     * Reads a number field.
     *
     * @param key the field name
     * @return the value, or {@code null} when absent
     * @throws IllegalArgumentException if the value is not a number
     */
    public Double optDouble(String key) {
        JsonNode value = take(key);
        if (value == null) {
            return null;
        }
        if (!value.isNumber()) {
            throw wrongType(key, "a number", value);
        }
        return value.doubleValue();
    }

    /**
     * Reads a boolean field.
     *
     * @param key the field name
     * @return the value, or {@code null} when absent
     * @throws IllegalArgumentException if the value is not {@code true} or {@code false}
     */
    public Boolean optBoolean(String key) {
        JsonNode value = take(key);
        if (value == null) {
            return null;
        }
        if (!value.isBoolean()) {
            throw wrongType(key, "true or false", value);
        }
        return value.booleanValue();
    }

    /**
     * Reads a string field.
     *
     * @param key the field name
     * @return the value, or {@code null} when absent
     * @throws IllegalArgumentException if the value is not a string
     */
    public String optString(String key) {
        JsonNode value = take(key);
        if (value == null) {
            return null;
        }
        if (!value.isTextual()) {
            throw wrongType(key, "a string", value);
        }
        return value.textValue();
    }

    /**
     * Reads a list of strings.
     *
     * @param key the field name
     * @return the values, or {@code null} when absent
     * @throws IllegalArgumentException if the value is not a list of strings
     */
    public List<String> optStringList(String key) {
        JsonNode value = take(key);
        if (value == null) {
            return null;
        }
        if (!value.isArray()) {
            throw wrongType(key, "a list of strings", value);
        }
        List<String> out = new ArrayList<>(value.size());
        for (JsonNode element : value) {
            if (!element.isTextual()) {
                throw wrongType(key, "a list of strings", value);
            }
            out.add(element.textValue());
        }
        return Collections.unmodifiableList(out);
    }

    /**
     * Reads a field in whatever JSON form it has.
     *
     * @param key the field name
     * @return the value, or {@code null} when absent
     */
    public JsonNode optNode(String key) {
        return take(key);
    }

    /**
     * Refuses a field whose value, if set, would change the result in a way this library does not
     * implement, instead of ignoring it silently.
     *
     * @param key the field name
     * @param feature what the field asks for, for the message
     * @throws IllegalArgumentException if the field holds anything but {@code null}, {@code false},
     *     an empty string, list or object
     */
    public void refuseIfSet(String key, String feature) {
        JsonNode value = take(key);
        if (value == null || isEmptyOrFalse(value)) {
            return;
        }
        throw new IllegalArgumentException(
                source
                        + ": field \""
                        + key
                        + "\" = "
                        + value
                        + " asks for "
                        + feature
                        + ", which peft4j does not implement; remove the field or use a config"
                        + " without it");
    }

    /**
     * Marks a field as understood but without effect here, logging it when it is set.
     *
     * @param key the field name
     * @param why why it has no effect, for the log
     */
    public void ignore(String key, String why) {
        JsonNode value = take(key);
        if (value != null && !isEmptyOrFalse(value)) {
            logger.info("{}: field \"{}\" = {} is ignored: {}", source, key, value, why);
        }
    }

    /**
     * Marks a field as read without using it: informational fields such as {@code peft_version}.
     *
     * @param key the field name
     */
    public void skip(String key) {
        read.add(key);
    }

    /**
     * Logs a warning naming every field that nothing read.
     *
     * @return the names of those fields
     */
    public List<String> warnAboutUnreadKeys() {
        List<String> unread = new ArrayList<>();
        Iterator<String> names = node.fieldNames();
        while (names.hasNext()) {
            String name = names.next();
            if (!read.contains(name)) {
                unread.add(name);
            }
        }
        if (!unread.isEmpty()) {
            logger.warn(
                    "{}: ignoring unknown fields {} (written by a newer or another tool?)",
                    source,
                    unread);
        }
        return unread;
    }

    /**
     * Creates the exception for an invalid value, naming the source and the field.
     *
     * @param key the field name
     * @param problem what is wrong and the allowed range
     * @return the exception to throw
     */
    public IllegalArgumentException invalid(String key, String problem) {
        return new IllegalArgumentException(source + ": field \"" + key + "\" " + problem);
    }

    /**
     * Runs a builder's {@code build()} so that its validation errors name the source too.
     *
     * @param build calls {@code build()}
     * @param <T> the built type
     * @return what {@code build} returns
     * @throws IllegalArgumentException if validation fails; the message starts with the source
     */
    public <T> T build(Supplier<T> build) {
        try {
            return build.get();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(source + ": " + e.getMessage(), e);
        }
    }

    private JsonNode take(String key) {
        read.add(key);
        JsonNode value = node.get(key);
        return value == null || value.isNull() ? null : value;
    }

    private IllegalArgumentException wrongType(String key, String expected, JsonNode found) {
        return invalid(key, "must be " + expected + ", found " + found);
    }

    private static boolean isEmptyOrFalse(JsonNode value) {
        return value.isBoolean() && !value.booleanValue()
                || value.isContainerNode() && value.size() == 0
                || value.isTextual() && value.textValue().isEmpty();
    }
}
