package org.peft4j.train.data;

import com.fasterxml.jackson.databind.JsonNode;

import org.peft4j.models.chat.ChatMessage;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Reads a conversation from a JSON Lines object: {@code "messages"}, a list of {@code {"role",
 * "content"}} as Hugging Face's chat data and transformers' {@code apply_chat_template} take it,
 * or ShareGPT's {@code "conversations"}, a list of {@code {"from", "value"}}.
 */
final class ConversationFields {

    /** The roles of {@code messages}. */
    static final List<String> ROLES =
            List.of(ChatMessage.SYSTEM, ChatMessage.USER, ChatMessage.ASSISTANT);

    /** ShareGPT's speakers and their roles ({@code human} and {@code gpt}, as in its data). */
    static final Map<String, String> SHAREGPT =
            Map.of(
                    "system", ChatMessage.SYSTEM,
                    "human", ChatMessage.USER,
                    "user", ChatMessage.USER,
                    "gpt", ChatMessage.ASSISTANT,
                    "assistant", ChatMessage.ASSISTANT);

    private ConversationFields() {}

    /** Whether the object holds a conversation. */
    static boolean holdsOne(JsonNode node) {
        return node.has("messages") || node.has("conversations");
    }

    /**
     * Reads the conversation of an object that {@link #holdsOne} says holds one.
     *
     * @throws IllegalArgumentException naming the field, the message's index and what is wrong
     */
    static List<ChatMessage> read(JsonNode node) {
        boolean shareGpt = !node.has("messages");
        String key = shareGpt ? "conversations" : "messages";
        String roleKey = shareGpt ? "from" : "role";
        String contentKey = shareGpt ? "value" : "content";
        JsonNode list = node.get(key);
        if (list == null || !list.isArray() || list.isEmpty()) {
            throw new IllegalArgumentException(
                    "field \"" + key + "\" must be a non-empty list of messages");
        }
        List<ChatMessage> messages = new ArrayList<>(list.size());
        for (int i = 0; i < list.size(); i++) {
            JsonNode message = list.get(i);
            String where = key + "[" + i + "]";
            if (!message.isObject()) {
                throw new IllegalArgumentException(where + " must be an object, found " + message);
            }
            String speaker = textField(message, roleKey, where);
            String role =
                    shareGpt ? SHAREGPT.get(speaker) : ROLES.contains(speaker) ? speaker : null;
            if (role == null) {
                throw new IllegalArgumentException(
                        where
                                + ": unknown "
                                + roleKey
                                + " \""
                                + speaker
                                + "\"; expected one of "
                                + (shareGpt ? SHAREGPT.keySet() : ROLES));
            }
            messages.add(new ChatMessage(role, textField(message, contentKey, where)));
        }
        return messages;
    }

    private static String textField(JsonNode message, String key, String where) {
        JsonNode value = message.get(key);
        if (value == null || !value.isTextual()) {
            throw new IllegalArgumentException(
                    where + ": field \"" + key + "\" must be a string, found " + value);
        }
        return value.textValue();
    }
}
