package org.peft4j.train.data;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;
import org.peft4j.core.lm.TokenCrossEntropy;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.models.chat.ChatMessage;
import org.peft4j.models.chat.ChatTemplate;
import org.peft4j.models.tokenizer.HuggingFaceLlamaTokenizer;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.models.tokenizer.TokenSpans;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * The loss of conversations rendered by the fixtures' real chat templates: what the learned tokens
 * cover, read back as text from the rendering, is the assistant turns as the template writes them
 * (written out here by reading each template), and nothing else.
 */
class RealTemplateConversationTest {

    private static final List<ChatMessage> CONVERSATION =
            List.of(
                    ChatMessage.system("Be brief."),
                    ChatMessage.user("Hi"),
                    ChatMessage.assistant("Hello!"),
                    ChatMessage.user("Bye"),
                    ChatMessage.assistant("Goodbye."));

    /** The characters the learned tokens cover, in order. */
    private static String learnedText(
            LlamaTokenizer tokenizer, ChatTemplate template, List<ChatMessage> messages) {
        String whole = template.render(messages, false);
        TokenizedExample example =
                ExampleEncoder.builder(tokenizer)
                        .optChatTemplate(template::render)
                        .optMaxLength(1024)
                        .build()
                        .encode(Example.conversation(messages, null))
                        .orElseThrow();
        TokenSpans spans = tokenizer.encodeWithSpans(whole);
        StringBuilder out = new StringBuilder();
        int covered = 0;
        for (int i = 0; i < example.labels().length; i++) {
            if (example.labels()[i] != TokenCrossEntropy.IGNORE_INDEX) {
                int start = Math.max(spans.starts()[i], covered);
                out.append(whole, start, Math.max(start, spans.ends()[i]));
                covered = Math.max(covered, spans.ends()[i]);
            }
        }
        return out.toString();
    }

    private static LlamaTokenizer tokenizer(String folder) throws IOException {
        return HuggingFaceLlamaTokenizer.fromPretrained(Fixtures.root().resolve(folder));
    }

    @Test
    void qwen3LearnsItsAnswersAndTheThinkBlockOfTheLast() throws IOException {
        // Qwen3's template with SmolLM2's ChatML tokenizer: both write <|im_start|>/<|im_end|>
        Path qwen3 = Fixtures.root().resolve("configs/qwen3-1.7b");
        try (LlamaTokenizer smol = tokenizer("tokenizers/smollm2-135m-chatml")) {
            assertEquals(
                    "Hello!<|im_end|>\n<think>\n\n</think>\n\nGoodbye.<|im_end|>\n",
                    learnedText(smol, ChatTemplate.fromPretrained(qwen3), CONVERSATION),
                    "the earlier answer without a think block (before the last query), the last"
                            + " with the empty one the template writes");
        }
    }

    @Test
    void chatmlAndZephyrLearnTheAnswersWithTheirEndOfTurn() throws IOException {
        Path smolDir = Fixtures.root().resolve("tokenizers/smollm2-135m-chatml");
        try (LlamaTokenizer smol = tokenizer("tokenizers/smollm2-135m-chatml")) {
            assertEquals(
                    "Hello!<|im_end|>\nGoodbye.<|im_end|>\n",
                    learnedText(smol, ChatTemplate.fromPretrained(smolDir), CONVERSATION));
        }
        // TinyLlama's Zephyr template: "<|assistant|>\n" + content + eos_token, then a newline
        Path tinyDir = Fixtures.root().resolve("tokenizers/tinyllama-1.1b-chat-v1.0");
        try (LlamaTokenizer tiny = tokenizer("tokenizers/tinyllama-1.1b-chat-v1.0")) {
            assertEquals(
                    "Hello!</s>\nGoodbye.</s>\n",
                    learnedText(tiny, ChatTemplate.fromPretrained(tinyDir), CONVERSATION));
        }
    }
}
