package org.peft4j.train.data;

import org.peft4j.models.chat.ChatMessage;

import java.util.List;

/**
 * One training example, in one of two forms:
 *
 * <ul>
 *   <li>rounds of a source (the prompt, not learned) and a target (the answer, learned), as the
 *       seed's {@code src}/{@code tgt} and Alpaca data give them, tokenised by {@link
 *       ExampleEncoder};
 *   <li>a conversation of {@link ChatMessage}s ({@code messages} or ShareGPT's {@code
 *       conversations}), rendered by the model's chat template and tokenised by {@link
 *       ConversationEncoder}: the assistant turns are learned.
 * </ul>
 *
 * @param sources the source of each round; empty for a conversation
 * @param targets the target of each round, as many as sources; empty for a conversation
 * @param messages the conversation; empty for rounds
 * @param origin where the example comes from, {@code file:line}, for messages about it; may be
 *     {@code null}
 */
public record Example(
        List<String> sources, List<String> targets, List<ChatMessage> messages, String origin) {

    /**
     * Checks the form.
     *
     * @param sources the source of each round
     * @param targets the target of each round
     * @param messages the conversation
     * @param origin where the example comes from, or {@code null}
     * @throws IllegalArgumentException if it is neither rounds (as many sources as targets, at
     *     least one) nor a conversation (at least one message), or both
     */
    public Example {
        boolean conversation = !messages.isEmpty();
        if (conversation ? !sources.isEmpty() || !targets.isEmpty()
                : sources.isEmpty() || sources.size() != targets.size()) {
            throw new IllegalArgumentException(
                    conversation
                            ? "an example is either rounds of sources and targets or a"
                                    + " conversation, not both"
                            : "an example needs as many sources as targets, at least one; got "
                                    + sources.size()
                                    + " and "
                                    + targets.size());
        }
        sources = List.copyOf(sources);
        targets = List.copyOf(targets);
        messages = List.copyOf(messages);
    }

    /**
     * Creates an example of rounds.
     *
     * @param sources the source of each round
     * @param targets the target of each round, as many as sources
     * @throws IllegalArgumentException if the counts differ or there are none
     */
    public Example(List<String> sources, List<String> targets) {
        this(sources, targets, List.of(), null);
    }

    /**
     * Creates a single-round example.
     *
     * @param source the prompt
     * @param target the answer
     * @return the example
     */
    public static Example of(String source, String target) {
        return new Example(List.of(source), List.of(target));
    }

    /**
     * Creates a conversation example.
     *
     * @param messages the messages, at least one
     * @param origin where it comes from ({@code file:line}), or {@code null}
     * @return the example
     */
    public static Example conversation(List<ChatMessage> messages, String origin) {
        if (messages.isEmpty()) {
            throw new IllegalArgumentException("a conversation needs at least one message");
        }
        return new Example(List.of(), List.of(), messages, origin);
    }

    /**
     * Returns the origin as the start of a message about the example.
     *
     * @return {@code "file:line: "}, or empty when the origin is unknown
     */
    public String where() {
        return origin == null ? "" : origin + ": ";
    }

    /**
     * Returns whether this is a conversation rather than rounds.
     *
     * @return true for {@code messages} or {@code conversations} data
     */
    public boolean isConversation() {
        return !messages.isEmpty();
    }
}
