package org.peft4j.train.data;

import org.peft4j.core.lm.TokenCrossEntropy;
import org.peft4j.models.chat.ChatMessage;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.models.tokenizer.TokenSpans;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Tokenises a conversation through the model's chat template, with the loss on the assistant
 * turns.
 *
 * <p>The whole conversation is rendered once, as transformers' {@code apply_chat_template}
 * renders it, and tokenised once without BOS or EOS (the template writes the special tokens it
 * wants, and transformers tokenises its text with {@code add_special_tokens=False}); every token
 * keeps the characters it covers. Assistant turn {@code k} covers the characters from the end of
 * {@code render(messages[:k], add_generation_prompt=True)} (the turn's opening, such as {@code
 * <|im_start|>assistant\n}, is not learned) to the end of {@code render(messages[:k+1])}: the
 * turn's text and the end-of-turn tokens after it ({@code <|im_end|>\n}, {@code <|eot_id|>}, {@code
 * </s>}). A token is learned when it starts inside such a span. Templates that render an earlier
 * turn differently once later turns follow (Qwen3 drops an earlier turn's empty thinking block)
 * are handled by finding the turn's content and closing text in the whole rendering; a template
 * for which neither works is an error naming the turn.
 *
 * <p>With {@code trainOnAll}, every token is learned, the system and user turns too.
 */
final class ConversationEncoder {

    private final LlamaTokenizer tokenizer;
    private final ChatRenderer template;
    private final boolean trainOnAll;

    ConversationEncoder(LlamaTokenizer tokenizer, ChatRenderer template, boolean trainOnAll) {
        this.tokenizer = tokenizer;
        this.template = template;
        this.trainOnAll = trainOnAll;
    }

    /**
     * Encodes a conversation whole: its ids and labels, however long; the caller cuts or drops
     * what exceeds the max length.
     *
     * @throws IllegalArgumentException naming the example's origin if the template raises or its
     *     turns cannot be found in the rendering
     */
    TokenizedExample encode(Example example) {
        List<ChatMessage> messages = example.messages();
        String full = render(example, messages, false);
        TokenSpans tokens = tokenizer.encodeWithSpans(full);
        int[] ids = tokens.ids();
        int[] labels = new int[ids.length];
        if (trainOnAll) {
            System.arraycopy(ids, 0, labels, 0, ids.length);
            return new TokenizedExample(ids, labels);
        }
        Arrays.fill(labels, TokenCrossEntropy.IGNORE_INDEX);
        for (int[] span : assistantSpans(example, full)) {
            for (int i = 0; i < ids.length; i++) {
                if (tokens.starts()[i] >= span[0] && tokens.starts()[i] < span[1]) {
                    labels[i] = ids[i];
                }
            }
        }
        return new TokenizedExample(ids, labels);
    }

    /** The character spans {@code [start, end)} of the assistant turns in the whole rendering. */
    private List<int[]> assistantSpans(Example example, String full) {
        List<ChatMessage> messages = example.messages();
        List<int[]> spans = new ArrayList<>();
        for (int k = 0; k < messages.size(); k++) {
            if (!ChatMessage.ASSISTANT.equals(messages.get(k).getRole())) {
                continue;
            }
            String before = render(example, messages.subList(0, k), true);
            if (!full.startsWith(before)) {
                throw problem(
                        example,
                        k,
                        "the template renders the turns before it differently from the whole"
                                + " conversation, so its start cannot be found");
            }
            String through = render(example, messages.subList(0, k + 1), false);
            int end =
                    full.startsWith(through)
                            ? through.length()
                            : endInWhole(example, k, full, before.length(), through);
            spans.add(new int[] {before.length(), end});
        }
        return spans;
    }

    /**
     * Finds where turn {@code k} ends in the whole rendering when the template renders it
     * otherwise as the last turn: its content, then the text that closes it when it is last.
     */
    private int endInWhole(Example example, int k, String full, int start, String through) {
        String content = example.messages().get(k).getContent();
        int last = through.lastIndexOf(content);
        int at = full.indexOf(content, start);
        if (content.isEmpty() || last < 0 || at < 0) {
            throw problem(
                    example,
                    k,
                    "the template renders it differently once later turns follow, and its"
                            + " content is not in the whole rendering as written");
        }
        String closing = through.substring(last + content.length());
        int end = at + content.length();
        if (!full.startsWith(closing, end)) {
            throw problem(
                    example,
                    k,
                    "the template closes it differently once later turns follow ("
                            + quote(closing)
                            + " as the last turn)");
        }
        return end + closing.length();
    }

    private String render(Example example, List<ChatMessage> messages, boolean prompt) {
        try {
            return template.render(messages, prompt);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException(
                    example.where() + "the chat template failed: " + e.getMessage(), e);
        }
    }

    private static IllegalArgumentException problem(Example example, int turn, String what) {
        return new IllegalArgumentException(
                example.where()
                        + "assistant message "
                        + turn
                        + " cannot be located for the loss: "
                        + what
                        + "; learn every token instead (ExampleEncoder.Builder.optTrainOnAll,"
                        + " --train-on-all), or split the conversation");
    }

    private static String quote(String text) {
        return '"' + text.replace("\n", "\\n") + '"';
    }
}
