package org.peft4j.models.chat;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/** One message of a conversation: who speaks ({@code role}) and what is said ({@code content}). */
public final class ChatMessage {

    /** The role of instructions that come before the conversation. */
    public static final String SYSTEM = "system";
    /** The role of the person talking to the model. */
    public static final String USER = "user";
    /** The role of the model. */
    public static final String ASSISTANT = "assistant";
    /** The role of a tool's answer to a call the model made. */
    public static final String TOOL = "tool";

    private final String role;
    private final String content;

    /**
     * Creates a message.
     *
     * @param role the role, usually one of {@link #SYSTEM}, {@link #USER}, {@link #ASSISTANT},
     *     {@link #TOOL} (templates decide which roles they accept)
     * @param content the text
     */
    public ChatMessage(String role, String content) {
        this.role = Objects.requireNonNull(role, "role");
        this.content = Objects.requireNonNull(content, "content");
    }

    /**
     * Returns a system message.
     *
     * @param content the text
     * @return the message
     */
    public static ChatMessage system(String content) {
        return new ChatMessage(SYSTEM, content);
    }

    /**
     * Returns a user message.
     *
     * @param content the text
     * @return the message
     */
    public static ChatMessage user(String content) {
        return new ChatMessage(USER, content);
    }

    /**
     * Returns an assistant message.
     *
     * @param content the text
     * @return the message
     */
    public static ChatMessage assistant(String content) {
        return new ChatMessage(ASSISTANT, content);
    }

    /**
     * Returns the role.
     *
     * @return the role
     */
    public String getRole() {
        return role;
    }

    /**
     * Returns the text.
     *
     * @return the text
     */
    public String getContent() {
        return content;
    }

    /**
     * Returns the message as the template sees it: a mapping with {@code role} and {@code
     * content}.
     *
     * @return a new mutable map
     */
    public Map<String, Object> toMap() {
        Map<String, Object> map = new LinkedHashMap<>();
        map.put("role", role);
        map.put("content", content);
        return map;
    }

    /** {@inheritDoc} */
    @Override
    public boolean equals(Object o) {
        if (!(o instanceof ChatMessage)) {
            return false;
        }
        ChatMessage other = (ChatMessage) o;
        return role.equals(other.role) && content.equals(other.content);
    }

    /** {@inheritDoc} */
    @Override
    public int hashCode() {
        return Objects.hash(role, content);
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return role + ": " + content;
    }
}
