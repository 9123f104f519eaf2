package org.peft4j.train.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads examples from JSON Lines, one object per line:
 *
 * <ul>
 *   <li>the seed's {@code {"src": ..., "tgt": ...}}, each a string, or lists of the same length for
 *       several rounds;
 *   <li>Alpaca's {@code {"instruction": ..., "input": ..., "output": ...}}: the source is the
 *       instruction, followed by a blank line and the input when the input is not empty.
 * </ul>
 *
 * <p>Blank lines are skipped. A malformed line fails with the file and line number, unless skipping
 * is asked for; then it is counted and logged.
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
        try (BufferedReader reader = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            String line;
            while ((line = reader.readLine()) != null) {
                number++;
                if (line.isBlank()) {
                    continue;
                }
                try {
                    examples.add(parse(line));
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
                            + " malformed); expected JSON Lines with {\"src\", \"tgt\"} or"
                            + " {\"instruction\", \"input\", \"output\"}");
        }
        return examples;
    }

    /**
     * Parses one line.
     *
     * @param line a JSON object
     * @return the example
     * @throws IllegalArgumentException saying what is wrong with the line
     */
    public static Example parse(String line) {
        JsonNode node;
        try {
            node = JSON.readTree(line);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (node == null || !node.isObject()) {
            throw new IllegalArgumentException("expected a JSON object");
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
                "has neither \"src\"/\"tgt\" nor \"instruction\"/\"output\" fields");
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
