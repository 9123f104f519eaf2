package org.peft4j.train.data;

import org.peft4j.models.chat.ChatMessage;

import java.util.List;

/**
 * Renders a conversation as the model's chat template does: {@code
 * org.peft4j.models.chat.ChatTemplate::render}, as transformers' {@code
 * apply_chat_template(messages, tokenize=False, add_generation_prompt=...)}.
 */
@FunctionalInterface
public interface ChatRenderer {

    /**
     * Renders messages.
     *
     * @param messages the conversation so far, possibly empty
     * @param addGenerationPrompt whether to end with the text that opens an assistant turn
     * @return the text, special tokens written out as text
     * @throws RuntimeException if the template raises; the message is the template's
     */
    String render(List<ChatMessage> messages, boolean addGenerationPrompt);
}
