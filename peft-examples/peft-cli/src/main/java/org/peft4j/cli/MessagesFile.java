package org.peft4j.cli;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.peft4j.models.chat.ChatMessage;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * Reads a conversation file: a JSON array of {@code {"role": ..., "content": ...}} objects, or
 * JSON Lines with one such object a line (a file whose first non-blank character is not {@code
 * [}). Every error names the file, the line and column or message number, and what is wrong.
 */
final class MessagesFile {

    private static final ObjectMapper JSON = new ObjectMapper();

    private MessagesFile() {}

    /**
     * Reads the messages of a file.
     *
     * @param file the file
     * @return the messages, in file order
     * @throws IOException if the file cannot be read or is not a conversation
     */
    static List<ChatMessage> read(Path file) throws IOException {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new IOException("--messages " + file + " does not exist", e);
        }
        List<ChatMessage> messages = new ArrayList<>();
        if (text.strip().startsWith("[")) {
            JsonNode array = parse(file, text, 0);
            Iterator<JsonNode> items = array.elements();
            for (int i = 1; items.hasNext(); i++) {
                messages.add(message(items.next(), file, "message " + i));
            }
            return messages;
        }
        String[] lines = text.split("\n", -1);
        for (int i = 0; i < lines.length; i++) {
            if (!lines[i].isBlank()) {
                messages.add(message(parse(file, lines[i], i), file, "line " + (i + 1)));
            }
        }
        return messages;
    }

    private static JsonNode parse(Path file, String text, int lineOffset) throws IOException {
        try {
            JsonNode node = JSON.readTree(text);
            if (node == null) {
                throw new IOException(file + " is empty: write a JSON array of messages");
            }
            return node;
        } catch (JsonProcessingException e) {
            JsonLocation at = e.getLocation();
            throw new IOException(
                    file + ": line " + (at.getLineNr() + lineOffset) + ", column "
                            + at.getColumnNr() + ": malformed JSON: " + e.getOriginalMessage()
                            + " (expected a JSON array of {\"role\", \"content\"} objects, or one"
                            + " such object a line)",
                    e);
        }
    }

    private static ChatMessage message(JsonNode node, Path file, String where)
            throws IOException {
        if (!node.isObject()) {
            throw new IOException(
                    file + ": " + where + " is not an object: write {\"role\": ..., \"content\":"
                            + " ...}");
        }
        JsonNode role = node.get("role");
        JsonNode content = node.get("content");
        if (role == null || !role.isTextual() || content == null || !content.isTextual()) {
            throw new IOException(
                    file + ": " + where + " needs a string \"role\" and a string \"content\"");
        }
        Iterator<String> names = node.fieldNames();
        while (names.hasNext()) {
            String name = names.next();
            if (!name.equals("role") && !name.equals("content")) {
                throw new IOException(
                        file + ": " + where + " has \"" + name + "\": peft4j template passes"
                                + " only role and content to the template");
            }
        }
        return new ChatMessage(role.asText(), content.asText());
    }
}
