package org.peft4j.models.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalInt;

/**
 * {@link SpecialTokens#fromPretrained} on small handwritten directories: precedence, the
 * post-processor fallback for {@code add_bos_token}, and the refusals with their messages.
 *
 * <p>The tokenizer.json is {@link HuggingFaceLlamaTokenizerTest#llama2Json()}: {@code <unk>} 0,
 * {@code <s>} 1, {@code </s>} 2, hello 3, world 4, ! 5; its post-processor puts {@code <s>} first.
 */
class SpecialTokenFilesTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private static Path write(Path dir, String name, String json) throws IOException {
        return Files.writeString(dir.resolve(name), json);
    }

    private static void tokenizerJson(Path dir) throws IOException {
        write(dir, "tokenizer.json", HuggingFaceLlamaTokenizerTest.llama2Json());
    }

    /** The message of the refusal, after checking that it names the file and the key. */
    private static String refused(Path dir, String file, String key) {
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class, () -> SpecialTokens.fromPretrained(dir));
        String message = e.getMessage();
        assertTrue(message.contains(dir.resolve(file).toString()), message);
        assertTrue(message.contains("\"" + key + "\""), message);
        return message;
    }

    @Test
    void generationConfigWinsOverConfigWhichWinsOverTokenizerConfig(@TempDir Path dir)
            throws IOException {
        tokenizerJson(dir);
        write(dir, "tokenizer_config.json", "{\"eos_token\": \"</s>\", \"bos_token\": \"<s>\"}");
        write(
                dir,
                "config.json",
                "{\"eos_token_id\": 4, \"bos_token_id\": 3, \"pad_token_id\": 0}");
        write(dir, "generation_config.json", "{\"eos_token_id\": [5, 2]}");
        SpecialTokens t = SpecialTokens.fromPretrained(dir);
        assertArrayEquals(new int[] {5, 2}, t.getEosIds()); // generation_config.json
        assertEquals(OptionalInt.of(3), t.getBosId()); // config.json: generation_config lacks it
        assertEquals(OptionalInt.of(0), t.getPadId()); // config.json
        assertEquals(2, t.getAppendedEosId()); // tokenizer_config.json's eos_token, always
        // no add_bos_token: the post-processor puts <s> (1) first, which is not this BOS (3)
        assertFalse(t.isAddBos());
        Files.delete(dir.resolve("config.json"));
        t = SpecialTokens.fromPretrained(dir);
        assertEquals(OptionalInt.of(1), t.getBosId()); // tokenizer_config.json's bos_token
        assertEquals(OptionalInt.empty(), t.getPadId()); // named nowhere
        assertTrue(t.isAddBos());
    }

    @Test
    void tokensMayBeAddedTokenObjects(@TempDir Path dir) throws IOException {
        tokenizerJson(dir);
        write(
                dir,
                "tokenizer_config.json",
                "{\"eos_token\": {\"content\": \"</s>\", \"special\": true},"
                        + " \"pad_token\": {\"__type\": \"AddedToken\", \"content\": \"<unk>\"},"
                        + " \"add_bos_token\": false}");
        SpecialTokens t = SpecialTokens.fromPretrained(dir);
        assertArrayEquals(new int[] {2}, t.getEosIds());
        assertEquals(OptionalInt.of(0), t.getPadId());
        assertFalse(t.isAddBos()); // the flag beats the post-processor
        try (LlamaTokenizer tokenizer = LlamaTokenizer.load(dir.resolve("tokenizer.json"))) {
            assertEquals(t, tokenizer.getSpecialTokens()); // tokenizer_config.json is next to it
            assertArrayEquals(new int[] {3, 4}, tokenizer.encodeStart("hello world"));
        }
    }

    @Test
    void llama3SequencePostProcessorAddsBos(@TempDir Path dir) throws IOException {
        ObjectNode root = (ObjectNode) JSON.readTree(HuggingFaceLlamaTokenizerTest.llama2Json());
        // as Llama 3's tokenizer.json: ByteLevel offsets, then the template putting BOS first
        ObjectNode byteLevel =
                JSON.createObjectNode()
                        .put("type", "ByteLevel")
                        .put("add_prefix_space", true)
                        .put("trim_offsets", false)
                        .put("use_regex", true);
        ObjectNode sequence = JSON.createObjectNode().put("type", "Sequence");
        sequence.putArray("processors").add(byteLevel).add(root.get("post_processor"));
        root.set("post_processor", sequence);
        write(dir, "tokenizer.json", root.toString());
        write(dir, "generation_config.json", "{\"bos_token_id\": 1, \"eos_token_id\": [2, 5]}");
        SpecialTokens t = SpecialTokens.fromPretrained(dir);
        assertTrue(t.isAddBos());
        try (LlamaTokenizer tokenizer = LlamaTokenizer.load(dir.resolve("tokenizer.json"))) {
            assertArrayEquals(new int[] {1, 3, 4}, tokenizer.encodeStart("hello world"));
            assertEquals("hello", tokenizer.decode(new int[] {1, 3, 5, 2})); // every EOS skipped
        }

        root.putNull("post_processor");
        write(dir, "tokenizer.json", root.toString());
        assertFalse(SpecialTokens.fromPretrained(dir).isAddBos());
    }

    @Test
    void tokenNotInTheVocabularyIsRefused(@TempDir Path dir) throws IOException {
        write(dir, "tokenizer_config.json", "{\"eos_token\": \"<|nope|>\"}");
        String message = refused(dir, "tokenizer_config.json", "eos_token");
        assertTrue(message.contains("<|nope|>") && message.contains("put the model's"), message);

        tokenizerJson(dir);
        message = refused(dir, "tokenizer_config.json", "eos_token");
        assertTrue(message.contains("tokenizer.json's added_tokens and model.vocab"), message);
        IOException e =
                assertThrows(
                        IOException.class,
                        () -> LlamaTokenizer.load(dir.resolve("tokenizer.json")));
        assertTrue(e.getMessage().contains("\"eos_token\""), e.getMessage());
    }

    @Test
    void eosIdOfTheWrongTypeIsRefused(@TempDir Path dir) throws IOException {
        tokenizerJson(dir);
        for (String value : new String[] {"\"2\"", "2.0", "[]", "[2, \"x\"]", "{}"}) {
            write(dir, "generation_config.json", "{\"eos_token_id\": " + value + "}");
            refused(dir, "generation_config.json", "eos_token_id");
        }
        Files.delete(dir.resolve("generation_config.json"));
        write(dir, "config.json", "{\"eos_token_id\": true}");
        refused(dir, "config.json", "eos_token_id");
    }

    @Test
    void listWhereOneIdIsNeededIsRefused(@TempDir Path dir) throws IOException {
        tokenizerJson(dir);
        write(dir, "generation_config.json", "{\"eos_token_id\": 2, \"bos_token_id\": [1, 3]}");
        String message = refused(dir, "generation_config.json", "bos_token_id");
        assertTrue(message.contains("does not pick one"), message);
        write(dir, "generation_config.json", "{\"eos_token_id\": 2}");
        write(dir, "config.json", "{\"pad_token_id\": [0]}");
        refused(dir, "config.json", "pad_token_id");
    }

    @Test
    void idOutsideTheVocabularyIsRefused(@TempDir Path dir) throws IOException {
        tokenizerJson(dir);
        write(dir, "generation_config.json", "{\"eos_token_id\": [2, 6]}");
        String message = refused(dir, "generation_config.json", "eos_token_id");
        assertTrue(message.contains("6, outside the vocabulary of 6 tokens"), message);

        // without tokenizer.json, config.json's vocab_size bounds the ids
        Files.delete(dir.resolve("tokenizer.json"));
        write(dir, "config.json", "{\"vocab_size\": 4}");
        write(dir, "generation_config.json", "{\"eos_token_id\": 2, \"pad_token_id\": -1}");
        refused(dir, "generation_config.json", "pad_token_id");
        write(dir, "generation_config.json", "{\"eos_token_id\": 2, \"bos_token_id\": 4}");
        message = refused(dir, "generation_config.json", "bos_token_id");
        assertTrue(message.contains("vocab_size"), message);
    }

    @Test
    void noEosAnywhereIsRefused(@TempDir Path dir) throws IOException {
        tokenizerJson(dir);
        write(dir, "config.json", "{\"bos_token_id\": 1}");
        IOException e = assertThrows(IOException.class, () -> SpecialTokens.fromPretrained(dir));
        String message = e.getMessage();
        assertTrue(message.startsWith(dir.toString()), message);
        assertTrue(message.contains("eos_token_id") && message.contains("eos_token"), message);
        assertTrue(message.contains("generation_config.json"), message);
    }

    @Test
    void addBosWithoutBosIsRefused(@TempDir Path dir) throws IOException {
        write(dir, "tokenizer_config.json", "{\"add_bos_token\": true}");
        write(dir, "generation_config.json", "{\"eos_token_id\": 2}");
        refused(dir, "tokenizer_config.json", "add_bos_token");
        write(dir, "tokenizer_config.json", "{\"add_bos_token\": \"yes\"}");
        refused(dir, "tokenizer_config.json", "add_bos_token");
    }

    @Test
    void builderValidates() {
        SpecialTokens.Builder noEos = SpecialTokens.builder();
        assertThrows(IllegalArgumentException.class, noEos::build);
        SpecialTokens.Builder noBos = SpecialTokens.builder().setEosIds(2).optAddBos(true);
        assertThrows(IllegalArgumentException.class, noBos::build);
        assertThrows(IllegalArgumentException.class, () -> SpecialTokens.builder().optPadId(-1));
        SpecialTokens t = SpecialTokens.builder().setEosIds(7, 8).build();
        assertEquals(7, t.getAppendedEosId());
        assertEquals(OptionalInt.empty(), t.getBosId());
        assertFalse(t.isAddBos() || t.isAddEos());
    }
}
