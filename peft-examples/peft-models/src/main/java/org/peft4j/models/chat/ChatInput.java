package org.peft4j.models.chat;

import java.time.Clock;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What a chat template renders: the conversation, whether to open the assistant's next turn, extra
 * template variables (such as {@code tools}, {@code date_string} or {@code enable_thinking}) and
 * the clock that {@code strftime_now} reads.
 */
public final class ChatInput {

    private final List<ChatMessage> messages;
    private final boolean addGenerationPrompt;
    private final Map<String, Object> variables;
    private final Clock clock;

    private ChatInput(Builder builder) {
        messages = List.copyOf(builder.messages);
        addGenerationPrompt = builder.addGenerationPrompt;
        variables = Collections.unmodifiableMap(new LinkedHashMap<>(builder.variables));
        clock = builder.clock;
    }

    /**
     * Returns a builder.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Returns the conversation.
     *
     * @return the messages, oldest first
     */
    public List<ChatMessage> getMessages() {
        return messages;
    }

    /**
     * Tells whether the render ends with the opening of an assistant turn.
     *
     * @return the template's {@code add_generation_prompt}
     */
    public boolean isAddGenerationPrompt() {
        return addGenerationPrompt;
    }

    /**
     * Returns the extra variables, which override the defaults of the same name.
     *
     * @return name to value (maps, lists, strings, numbers, booleans)
     */
    public Map<String, Object> getVariables() {
        return variables;
    }

    /**
     * Returns the clock of {@code strftime_now}.
     *
     * @return the clock, in the time zone the date is written in
     */
    public Clock getClock() {
        return clock;
    }

    /** Builds a {@link ChatInput}. */
    public static final class Builder {

        private List<ChatMessage> messages = new ArrayList<>();
        private boolean addGenerationPrompt;
        private final Map<String, Object> variables = new LinkedHashMap<>();
        private Clock clock = Clock.systemDefaultZone();

        private Builder() {}

        /**
         * Sets the conversation.
         *
         * @param messages the messages, oldest first
         * @return this builder
         */
        public Builder setMessages(List<ChatMessage> messages) {
            this.messages = new ArrayList<>(Objects.requireNonNull(messages, "messages"));
            return this;
        }

        /**
         * Sets whether to open the assistant's next turn (default false).
         *
         * @param addGenerationPrompt the template's {@code add_generation_prompt}
         * @return this builder
         */
        public Builder optAddGenerationPrompt(boolean addGenerationPrompt) {
            this.addGenerationPrompt = addGenerationPrompt;
            return this;
        }

        /**
         * Adds a template variable, as a keyword argument of {@code apply_chat_template}.
         *
         * @param name the variable name
         * @param value its value: maps, lists, strings, numbers, booleans or null
         * @return this builder
         */
        public Builder optVariable(String name, Object value) {
            variables.put(Objects.requireNonNull(name, "name"), value);
            return this;
        }

        /**
         * Sets the clock {@code strftime_now} reads (default the system clock in its zone);
         * tests pass a fixed one.
         *
         * @param clock the clock
         * @return this builder
         */
        public Builder optClock(Clock clock) {
            this.clock = Objects.requireNonNull(clock, "clock");
            return this;
        }

        /**
         * Builds the input.
         *
         * @return the input
         */
        public ChatInput build() {
            return new ChatInput(this);
        }
    }
}
