package org.peft4j.train.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.lm.TokenCrossEntropy;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.models.chat.ChatMessage;
import org.peft4j.models.tokenizer.HuggingFaceLlamaTokenizer;
import org.peft4j.models.tokenizer.LlamaTokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Conversation data: {@code messages} and ShareGPT's {@code conversations} read from JSON Lines,
 * and their loss on the assistant turns. The tokenizer is SmolLM2's real byte-level BPE, whose
 * {@code <|im_start|>} and {@code <|im_end|>} are single special tokens; the expected learned
 * tokens are those of the assistant texts tokenised on their own, an independent tokenisation of
 * what the template writes for the turn (byte-level BPE splits at the special tokens, so the two
 * agree).
 */
class ConversationDataTest {

    @TempDir Path dir;

    private static LlamaTokenizer smol;

    /** ChatML, as SmolLM2's template writes it. */
    private static final ChatRenderer CHATML =
            (messages, prompt) -> {
                StringBuilder out = new StringBuilder();
                for (ChatMessage m : messages) {
                    out.append("<|im_start|>")
                            .append(m.getRole())
                            .append('\n')
                            .append(m.getContent())
                            .append("<|im_end|>\n");
                }
                return prompt ? out.append("<|im_start|>assistant\n").toString() : out.toString();
            };

    /**
     * Qwen3's way: the last assistant turn opens with an empty thinking block, earlier ones do not,
     * so an earlier turn renders otherwise once later turns follow.
     */
    private static final ChatRenderer THINKING =
            (messages, prompt) -> {
                StringBuilder out = new StringBuilder();
                for (int i = 0; i < messages.size(); i++) {
                    ChatMessage m = messages.get(i);
                    boolean lastAnswer =
                            m.getRole().equals(ChatMessage.ASSISTANT) && i == messages.size() - 1;
                    out.append("<|im_start|>")
                            .append(m.getRole())
                            .append('\n')
                            .append(lastAnswer ? "<think>\n\n</think>\n\n" : "")
                            .append(m.getContent())
                            .append("<|im_end|>\n");
                }
                return prompt ? out.append("<|im_start|>assistant\n").toString() : out.toString();
            };

    @BeforeAll
    static void load() throws IOException {
        smol =
                HuggingFaceLlamaTokenizer.fromPretrained(
                        Fixtures.root().resolve("tokenizers/smollm2-135m-chatml"));
    }

    @AfterAll
    static void close() {
        if (smol != null) {
            smol.close();
        }
    }

    private ExampleEncoder encoder(ChatRenderer template, boolean all, int maxLength) {
        return ExampleEncoder.builder(smol)
                .optChatTemplate(template)
                .optTrainOnAll(all)
                .optMaxLength(maxLength)
                .build();
    }

    private static int[] ids(String text) {
        return smol.encodeWithSpans(text).ids();
    }

    private static int[] learned(TokenizedExample example) {
        return IntStream.of(example.labels())
                .filter(l -> l != TokenCrossEntropy.IGNORE_INDEX)
                .toArray();
    }

    private static int[] concat(int[]... parts) {
        return Arrays.stream(parts).flatMapToInt(IntStream::of).toArray();
    }

    private static final List<ChatMessage> TWO_TURNS =
            List.of(
                    ChatMessage.system("Be brief."),
                    ChatMessage.user("Hi"),
                    ChatMessage.assistant("Hello! 😀"),
                    ChatMessage.user("Bye"),
                    ChatMessage.assistant("Goodbye."));

    @Test
    void theAssistantTurnsAndTheirEndOfTurnAreLearnedTheRestMasked() {
        TokenizedExample example =
                encoder(CHATML, false, 512)
                        .encode(Example.conversation(TWO_TURNS, "chat.jsonl:1"))
                        .orElseThrow();
        String whole = CHATML.render(TWO_TURNS, false);
        assertArrayEquals(ids(whole), example.inputIds(), "the rendering tokenised once");
        assertArrayEquals(
                concat(ids("Hello! 😀<|im_end|>\n"), ids("Goodbye.<|im_end|>\n")),
                learned(example),
                "the two answers, each with <|im_end|> and its newline (the emoji's bytes too)");
        // everything before the first answer, its opening included, is masked
        int opening = ids(CHATML.render(TWO_TURNS.subList(0, 2), true)).length;
        for (int i = 0; i < opening; i++) {
            assertEquals(TokenCrossEntropy.IGNORE_INDEX, example.labels()[i], "token " + i);
        }
        assertTrue(example.labels()[opening] >= 0, "the first answer's first token is learned");

        TokenizedExample all =
                encoder(CHATML, true, 512)
                        .encode(Example.conversation(TWO_TURNS, null))
                        .orElseThrow();
        assertArrayEquals(all.inputIds(), all.labels(), "train on all: every token learned");
    }

    @Test
    void aTurnRenderedOtherwiseWhenLastIsFoundByItsContent() {
        TokenizedExample example =
                encoder(THINKING, false, 512)
                        .encode(Example.conversation(TWO_TURNS, null))
                        .orElseThrow();
        assertArrayEquals(
                concat(
                        ids("Hello! 😀<|im_end|>\n"),
                        ids("<think>\n\n</think>\n\nGoodbye.<|im_end|>\n")),
                learned(example),
                "the earlier answer as the whole rendering has it, the last with its think block");
    }

    @Test
    void conversationsWithoutAnAnswerAreSkippedAndCountedOverlongOnesCut() {
        List<Example> examples =
                List.of(
                        Example.conversation(TWO_TURNS, null),
                        Example.conversation(List.of(ChatMessage.user("Anyone?")), "c.jsonl:2"));
        ExampleEncoder.Encoded encoded = encoder(CHATML, false, 512).encodeAll(examples, "c");
        assertEquals(1, encoded.examples().size());
        assertEquals(1, encoded.skipped());

        int whole = ids(CHATML.render(TWO_TURNS, false)).length;
        int cutAt = ids(CHATML.render(TWO_TURNS.subList(0, 4), false)).length + 2;
        ExampleEncoder.Encoded cut =
                encoder(CHATML, false, cutAt).encodeAll(examples.subList(0, 1), "c");
        assertEquals(1, cut.truncated());
        assertEquals(cutAt, cut.examples().get(0).inputIds().length);
        assertTrue(whole > cutAt);
        // a max length that ends before the first answer leaves nothing to learn
        int beforeAnswer = ids(CHATML.render(TWO_TURNS.subList(0, 2), true)).length;
        ExampleEncoder.Encoded none =
                encoder(CHATML, false, beforeAnswer).encodeAll(examples.subList(0, 1), "c");
        assertEquals(0, none.examples().size());
        assertEquals(1, none.skipped());
    }

    @Test
    void messagesAndShareGptLinesAreReadWithTheirRoles() throws IOException {
        Path file = dir.resolve("chat.jsonl");
        Files.writeString(
                file,
                "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"},"
                        + " {\"role\": \"assistant\", \"content\": \"Hello\"}]}\n"
                        + "{\"conversations\": [{\"from\": \"system\", \"value\": \"S\"},"
                        + " {\"from\": \"human\", \"value\": \"Q\"},"
                        + " {\"from\": \"gpt\", \"value\": \"A\"}]}\n");
        List<Example> examples = JsonlExamples.read(file, false);
        assertEquals(
                List.of(ChatMessage.user("Hi"), ChatMessage.assistant("Hello")),
                examples.get(0).messages());
        assertEquals(file + ":1", examples.get(0).origin());
        assertEquals(
                List.of(
                        ChatMessage.system("S"), ChatMessage.user("Q"), ChatMessage.assistant("A")),
                examples.get(1).messages());
    }

    @Test
    void badConversationsAreRefusedWithFileLineAndMessage() throws IOException {
        Path file = dir.resolve("bad.jsonl");
        Files.writeString(
                file,
                "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}\n"
                        + "{\"messages\": [{\"role\": \"bot\", \"content\": \"Hello\"}]}\n");
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> JsonlExamples.read(file, false));
        assertTrue(e.getMessage().contains(file + ":2"), e.getMessage());
        assertTrue(e.getMessage().contains("messages[0]"), e.getMessage());
        assertTrue(e.getMessage().contains("\"bot\""), e.getMessage());
        assertTrue(e.getMessage().contains("[system, user, assistant]"), e.getMessage());

        Files.writeString(file, "{\"conversations\": [{\"from\": \"gpt\", \"value\": 3}]}\n");
        e = assertThrows(IllegalArgumentException.class, () -> JsonlExamples.read(file, false));
        assertTrue(e.getMessage().contains("\"value\" must be a string"), e.getMessage());

        ChatRenderer raising =
                (messages, prompt) -> {
                    throw new IllegalStateException("Conversation roles must alternate");
                };
        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                encoder(raising, false, 64)
                                        .encode(Example.conversation(TWO_TURNS, "d.jsonl:7")));
        assertTrue(
                e.getMessage().startsWith("d.jsonl:7: the chat template failed"), e.getMessage());
        assertTrue(e.getMessage().contains("roles must alternate"), e.getMessage());

        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                ExampleEncoder.builder(smol)
                                        .build()
                                        .encode(Example.conversation(TWO_TURNS, "d.jsonl:8")));
        assertTrue(e.getMessage().contains("d.jsonl:8: holds a conversation"), e.getMessage());
        assertTrue(e.getMessage().contains("optChatTemplate"), e.getMessage());
    }
}
