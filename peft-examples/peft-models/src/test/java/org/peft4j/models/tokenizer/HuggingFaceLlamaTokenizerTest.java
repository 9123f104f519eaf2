package org.peft4j.models.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The tokenizer.json wrapper, on small WordLevel tokenizers written here. */
class HuggingFaceLlamaTokenizerTest {

    /** A Llama 2 style vocabulary: unk, BOS, EOS first, then words. */
    static String llama2Json() {
        return json(List.of("<unk>", "<s>", "</s>", "hello", "world", "!"), "<s>", "</s>");
    }

    /** Llama 3 names, after the words, and no {@code <|end_of_text|>}: EOS is the next name. */
    private static String llama3Json() {
        List<String> tokens = List.of("<unk>", "hello", "world", "<|begin_of_text|>", "<|eot_id|>");
        return json(tokens, "<|begin_of_text|>", "<|eot_id|>");
    }

    /**
     * A WordLevel tokenizer.json splitting on whitespace; token i of {@code tokens} has id i; unk,
     * BOS and EOS are special added tokens. Its post processor would put BOS first: the wrapper
     * must not let it.
     */
    private static String json(List<String> tokens, String bos, String eos) {
        List<String> vocab = new ArrayList<>();
        List<String> added = new ArrayList<>();
        for (int id = 0; id < tokens.size(); id++) {
            String token = tokens.get(id);
            vocab.add(String.format("\"%s\": %d", token, id));
            if (List.of("<unk>", bos, eos).contains(token)) {
                added.add(
                        String.format(
                                "{\"id\": %d, \"content\": \"%s\", \"single_word\": false,"
                                        + " \"lstrip\": false, \"rstrip\": false,"
                                        + " \"normalized\": false, \"special\": true}",
                                id, token));
            }
        }
        return """
               {
                 "version": "1.0",
                 "truncation": null,
                 "padding": null,
                 "added_tokens": [%s],
                 "normalizer": null,
                 "pre_tokenizer": {"type": "Whitespace"},
                 "post_processor": {
                   "type": "TemplateProcessing",
                   "single": [{"SpecialToken": {"id": "%s", "type_id": 0}},
                              {"Sequence": {"id": "A", "type_id": 0}}],
                   "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                            {"Sequence": {"id": "B", "type_id": 1}}],
                   "special_tokens": {"%s": {"id": "%s", "ids": [%d], "tokens": ["%s"]}}
                 },
                 "decoder": null,
                 "model": {"type": "WordLevel", "vocab": {%s}, "unk_token": "<unk>"}
               }
               """
                .formatted(
                        String.join(", ", added),
                        bos,
                        bos,
                        bos,
                        tokens.indexOf(bos),
                        bos,
                        String.join(", ", vocab));
    }

    @Test
    void encodesWithAndWithoutBosAndEos(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, llama2Json());
        try (LlamaTokenizer tokenizer = LlamaTokenizer.load(file)) {
            assertEquals(1, tokenizer.getBosTokenId());
            assertEquals(2, tokenizer.getSpecialTokens().getAppendedEosId());
            assertEquals(6, tokenizer.getVocabSize());
            assertArrayEquals(new int[] {3, 4, 5}, tokenizer.encode("hello world!", false, false));
            assertArrayEquals(
                    new int[] {1, 3, 4, 5, 2}, tokenizer.encode("hello world!", true, true));
            assertArrayEquals(new int[] {3, 0, 2}, tokenizer.encode("hello there", false, true));
            assertEquals("hello world !", tokenizer.decode(new int[] {1, 3, 4, 5, 2}));
            IllegalArgumentException e =
                    assertThrows(
                            IllegalArgumentException.class,
                            () -> tokenizer.decode(new int[] {3, 6}));
            assertTrue(e.getMessage().contains("6"), e.getMessage());
        }
    }

    @Test
    void longTextIsNotTruncated(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, llama2Json());
        try (LlamaTokenizer tokenizer = LlamaTokenizer.load(file)) {
            // DJL truncates to 512 tokens unless told otherwise
            assertEquals(2001, tokenizer.encode("hello ".repeat(2000), true, false).length);
        }
    }

    @Test
    void findsLlama3SpecialTokens(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, llama3Json());
        try (LlamaTokenizer tokenizer = LlamaTokenizer.load(file)) {
            assertEquals(3, tokenizer.getBosTokenId());
            assertEquals(4, tokenizer.getSpecialTokens().getAppendedEosId());
            int[] ids = tokenizer.encode("hello world", true, true);
            assertArrayEquals(new int[] {3, 1, 2, 4}, ids);
            assertEquals("hello world", tokenizer.decode(ids));
        }
    }

    @Test
    void unknownSpecialTokensNeedExplicitIds(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, llama2Json().replace("<s>", "[BOS]").replace("</s>", "[EOS]"));
        IOException e = assertThrows(IOException.class, () -> LlamaTokenizer.load(file));
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("<|begin_of_text|>"), e.getMessage());

        try (LlamaTokenizer tokenizer = HuggingFaceLlamaTokenizer.load(file, 1, 2)) {
            int[] ids = tokenizer.encode("hello", true, true);
            assertArrayEquals(new int[] {1, 3, 2}, ids);
            assertEquals("hello", tokenizer.decode(ids));
        }
        assertThrows(IOException.class, () -> HuggingFaceLlamaTokenizer.load(file, 1, 6));
    }

    @Test
    void malformedJsonFailsNamingTheFile(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, "{\"model\": ");
        IOException e = assertThrows(IOException.class, () -> LlamaTokenizer.load(file));
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
    }
}
