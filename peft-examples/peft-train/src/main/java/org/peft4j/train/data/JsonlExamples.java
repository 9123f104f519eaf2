package org.peft4j.train.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Reads examples from JSON Lines, one object per line:
 *
 * <ul>
 *   <li>the seed's {@code {"src": ..., "tgt": ...}}, each a string, or lists of the same length for
 *       several rounds;
 *   <li>Alpaca's {@code {"instruction": ..., "input": ..., "output": ...}}: the source is the
 *       instruction, followed by a blank line and the input when the input is not empty;
 *   <li>a conversation: {@code {"messages": [{"role": ..., "content": ...}, ...]}} with roles
 *       {@code system}, {@code user} and {@code assistant}, or ShareGPT's {@code
 *       {"conversations": [{"from": ..., "value": ...}, ...]}} with {@code system}, {@code human}
 *       and {@code gpt}; rendered later by the model's chat template ({@link
 *       ConversationEncoder}). An unknown role fails with the file, line and message index.
 * </ul>
 *
 * <p>The file is UTF-8, lines end with {@code \n} or {@code \r\n}. Blank lines are skipped. A
 * malformed line (not UTF-8, not JSON, or without the fields) fails with the file and line number
 * (and for bytes that are not UTF-8, their offset in the file), unless skipping is asked for; then
 * it is counted and logged.
 */
public final class JsonlExamples {

    private static final Logger logger = LoggerFactory.getLogger(JsonlExamples.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private JsonlExamples() {}

    /**
     * Reads every example of a file.
     *
     * @param file the JSON Lines file
     * @param skipMalformed whether to skip (and count) malformed lines instead of failing
     * @return the examples, in file order
     * @throws IOException if the file cannot be read
     * @throws IllegalArgumentException for a malformed line ({@code file:line: what}) or a file
     *     without examples
     */
    public static List<Example> read(Path file, boolean skipMalformed) throws IOException {
        List<Example> examples = new ArrayList<>();
        int skipped = 0;
        int number = 0;
        CharsetDecoder utf8 =
                StandardCharsets.UTF_8
                        .newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT);
        try (InputStream in = new BufferedInputStream(Files.newInputStream(file))) {
            LineBytes line = new LineBytes();
            long offset = 0; // of the line's first byte in the file
            while (line.read(in)) {
                number++;
                try {
                    String text = decode(utf8, line, offset);
                    if (!text.isBlank()) {
                        examples.add(parse(text, file + ":" + number));
                    }
                } catch (IllegalArgumentException e) {
                    String where = file + ":" + number + ": " + e.getMessage();
                    if (!skipMalformed) {
                        throw new IllegalArgumentException(
                                where + " (pass --skip-malformed to skip such lines)", e);
                    }
                    if (skipped < 5) {
                        logger.warn("skipping {}", where);
                    }
                    skipped++;
                }
                offset += line.consumed;
            }
        }
        if (skipped > 0) {
            logger.warn("{}: skipped {} malformed lines of {}", file, skipped, number);
        }
        if (examples.isEmpty()) {
            throw new IllegalArgumentException(
                    file
                            + ": holds no examples ("
                            + number
                            + " lines, "
                            + skipped
                            + " malformed); expected JSON Lines with {\"messages\"},"
                            + " {\"conversations\"}, {\"src\", \"tgt\"} or {\"instruction\","
                            + " \"input\", \"output\"}");
        }
        return examples;
    }

    /**
     * Decodes a line as UTF-8.
     *
     * @throws IllegalArgumentException naming the first byte that is not UTF-8 and its offset in
     *     the file
     */
    private static String decode(CharsetDecoder utf8, LineBytes line, long offset) {
        ByteBuffer bytes = ByteBuffer.wrap(line.bytes, 0, line.length);
        CharBuffer chars = CharBuffer.allocate(line.length); // UTF-8 has no fewer bytes than chars
        utf8.reset();
        CoderResult result = utf8.decode(bytes, chars, true);
        if (!result.isError()) {
            result = utf8.flush(chars);
        }
        if (result.isError()) {
            int at = bytes.position();
            StringBuilder found = new StringBuilder();
            for (int i = at; i < Math.min(at + result.length(), line.length); i++) {
                found.append(String.format(Locale.ROOT, " 0x%02X", line.bytes[i] & 0xFF));
            }
            throw new IllegalArgumentException(
                    "not valid UTF-8 at byte "
                            + (at + 1)
                            + " of the line (offset "
                            + (offset + at)
                            + " of the file):"
                            + found
                            + "; save the file as UTF-8");
        }
        chars.flip();
        return chars.toString();
    }

    /**
     * One line's bytes, without its end ({@code \n}, {@code \r\n} or {@code \r}, as {@link
     * java.io.BufferedReader#readLine()} splits), in a buffer reused per line.
     */
    private static final class LineBytes {
        byte[] bytes = new byte[256];
        int length;
        long consumed; // the line's bytes in the file, its end included

        /** Reads the next line; false at the end of the file. */
        boolean read(InputStream in) throws IOException {
            length = 0;
            consumed = 0;
            int b;
            while ((b = in.read()) != -1) {
                consumed++;
                if (b == '\n') {
                    break;
                }
                if (b == '\r') {
                    in.mark(1);
                    if (in.read() == '\n') {
                        consumed++;
                    } else {
                        in.reset();
                    }
                    break;
                }
                if (length == bytes.length) {
                    bytes = Arrays.copyOf(bytes, 2 * bytes.length);
                }
                bytes[length++] = (byte) b;
            }
            return consumed > 0;
        }
    }

    /**
     * Parses one line.
     *
     * @param line a JSON object
     * @return the example
     * @throws IllegalArgumentException saying what is wrong with the line
     */
    public static Example parse(String line) {
        return parse(line, null);
    }

    /**
     * Parses one line that comes from a known place.
     *
     * @param line a JSON object
     * @param origin where it comes from ({@code file:line}), kept with a conversation for the
     *     messages of its rendering, or {@code null}
     * @return the example
     * @throws IllegalArgumentException saying what is wrong with the line
     */
    public static Example parse(String line, String origin) {
        JsonNode node;
        try {
            node = JSON.readTree(line);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (node == null || !node.isObject()) {
            throw new IllegalArgumentException("expected a JSON object");
        }
        if (ConversationFields.holdsOne(node)) {
            return Example.conversation(ConversationFields.read(node), origin);
        }
        if (node.has("src") || node.has("tgt")) {
            return new Example(texts(node, "src"), texts(node, "tgt"));
        }
        if (node.has("instruction") || node.has("output")) {
            String instruction = text(node, "instruction");
            String input = node.has("input") ? text(node, "input") : "";
            String source = input.isEmpty() ? instruction : instruction + "\n\n" + input;
            return Example.of(source, text(node, "output"));
        }
        throw new IllegalArgumentException(
                "has none of the fields \"messages\", \"conversations\", \"src\"/\"tgt\" and"
                        + " \"instruction\"/\"output\"");
    }

    private static List<String> texts(JsonNode node, String key) {
        JsonNode value = node.get(key);
        if (value == null || value.isNull()) {
            throw new IllegalArgumentException("field \"" + key + "\" is missing");
        }
        if (value.isTextual()) {
            return List.of(value.textValue());
        }
        if (value.isArray() && value.size() > 0) {
            List<String> out = new ArrayList<>();
            for (JsonNode element : value) {
                if (!element.isTextual()) {
                    throw new IllegalArgumentException(
                            "field \"" + key + "\" must hold strings, found " + element);
                }
                out.add(element.textValue());
            }
            return out;
        }
        throw new IllegalArgumentException(
                "field \"" + key + "\" must be a string or a non-empty list of strings");
    }

    private static String text(JsonNode node, String key) {
        JsonNode value = node.get(key);
        if (value == null || !value.isTextual()) {
            throw new IllegalArgumentException("field \"" + key + "\" must be a string");
        }
        return value.textValue();
    }
}
