package org.peft4j.models.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import org.junit.jupiter.api.Test;
import org.peft4j.core.testing.Fixtures;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.OptionalInt;

/**
 * {@link SpecialTokens#fromPretrained} on the real files of {@code shared/fixtures}. Every
 * expected value was read by hand from the fixture's JSON; the comments say which file and key.
 */
class SpecialTokensFixtureTest {

    /** The fixture folder, or the test is skipped saying where it was looked for. */
    private static Path fixture(String name) {
        Path dir = Fixtures.root().resolve(name);
        assumeTrue(Files.isDirectory(dir), "fixture " + dir + " not found; skipped");
        return dir;
    }

    @Test
    void llama32InstructStopsAtAllThreeEndTokensWithoutTokenizerJson() throws IOException {
        SpecialTokens t = SpecialTokens.fromPretrained(fixture("configs/llama3.2-1b-instruct"));
        // generation_config.json "eos_token_id": [128001, 128008, 128009] (config.json the same)
        assertArrayEquals(new int[] {128001, 128008, 128009}, t.getEosIds());
        // generation_config.json "bos_token_id": 128000
        assertEquals(OptionalInt.of(128000), t.getBosId());
        // tokenizer_config.json "eos_token": "<|eot_id|>", added_tokens_decoder "128009"
        assertEquals(128009, t.getAppendedEosId());
        // no pad_token_id in either config; tokenizer_config.json "pad_token": "<|eot_id|>"
        assertEquals(OptionalInt.of(128009), t.getPadId());
        // no add_bos_token and no tokenizer.json whose post-processor could say: not added
        assertFalse(t.isAddBos());
        assertFalse(t.isAddEos());
        assertTrue(t.isEos(128008));
        // the directory has no tokenizer.json to encode with
        assertThrows(
                NoSuchFileException.class,
                () -> HuggingFaceLlamaTokenizer.fromPretrained(
                        fixture("configs/llama3.2-1b-instruct")));
    }

    @Test
    void qwenHasTwoEndTokensAndAddsNoBos() throws IOException {
        for (String name : new String[] {"configs/qwen2.5-0.5b-instruct", "configs/qwen3-1.7b"}) {
            SpecialTokens t = SpecialTokens.fromPretrained(fixture(name));
            // generation_config.json "eos_token_id": [151645, 151643] (config.json has 151645)
            assertArrayEquals(new int[] {151645, 151643}, t.getEosIds(), name);
            // generation_config.json "bos_token_id": 151643 (tokenizer_config "bos_token": null)
            assertEquals(OptionalInt.of(151643), t.getBosId(), name);
            // generation_config.json "pad_token_id": 151643
            assertEquals(OptionalInt.of(151643), t.getPadId(), name);
            // tokenizer_config.json "eos_token": "<|im_end|>", added_tokens_decoder "151645"
            assertEquals(151645, t.getAppendedEosId(), name);
            // tokenizer_config.json "add_bos_token": false
            assertFalse(t.isAddBos(), name);
            assertFalse(t.isAddEos(), name);
        }
    }

    @Test
    void tinyLlamaAddsBosAndEncodesWithIt() throws IOException {
        Path dir = fixture("tokenizers/tinyllama-1.1b-chat-v1.0");
        SpecialTokens t = SpecialTokens.fromPretrained(dir);
        // generation_config.json "eos_token_id": 2, "bos_token_id": 1, "pad_token_id": 0
        assertArrayEquals(new int[] {2}, t.getEosIds());
        assertEquals(OptionalInt.of(1), t.getBosId());
        assertEquals(OptionalInt.of(0), t.getPadId());
        // tokenizer_config.json "eos_token": "</s>"; tokenizer.json added_tokens: id 2
        assertEquals(2, t.getAppendedEosId());
        // tokenizer_config.json "add_bos_token": true, "add_eos_token": false
        assertTrue(t.isAddBos());
        assertFalse(t.isAddEos());
        for (LlamaTokenizer tokenizer :
                new LlamaTokenizer[] {
                    HuggingFaceLlamaTokenizer.fromPretrained(dir),
                    LlamaTokenizer.findNextTo(dir)
                }) {
            try (tokenizer) {
                assertEquals(t, tokenizer.getSpecialTokens());
                int[] ids = tokenizer.encodeStart("Hello");
                assertEquals(1, ids[0]);
                assertTrue(ids.length > 1);
                int[] withEos = tokenizer.encode("Hello", false, true);
                assertEquals(2, withEos[withEos.length - 1]);
                assertEquals("Hello", tokenizer.decode(withEos));
            }
        }
    }

    @Test
    void smolLm2AddsNoBos() throws IOException {
        Path dir = fixture("tokenizers/smollm2-135m-chatml");
        SpecialTokens t = SpecialTokens.fromPretrained(dir);
        // generation_config.json "eos_token_id": 2, "bos_token_id": 1, "pad_token_id": 2
        assertArrayEquals(new int[] {2}, t.getEosIds());
        assertEquals(OptionalInt.of(1), t.getBosId());
        assertEquals(OptionalInt.of(2), t.getPadId());
        // tokenizer_config.json "eos_token": "<|im_end|>"; tokenizer.json added_tokens: id 2
        assertEquals(2, t.getAppendedEosId());
        // no add_bos_token in tokenizer_config.json, tokenizer.json "post_processor": null
        assertFalse(t.isAddBos());
        try (LlamaTokenizer tokenizer = LlamaTokenizer.findNextTo(dir)) {
            int[] ids = tokenizer.encodeStart("Hello");
            assertTrue(ids.length > 0 && ids[0] != 1, "no BOS first");
            assertEquals("Hello", tokenizer.decode(ids));
        }
    }

    @Test
    void stories260KUsesTheLlama2cConvention() throws IOException {
        // stories260K/tokenizer.bin: ids 1, 2 are BOS, EOS (fixtures README); config.json
        // "bos_token_id": 1, "eos_token_id": 2 agree
        try (LlamaTokenizer tokenizer = LlamaTokenizer.findNextTo(Fixtures.stories260K())) {
            SpecialTokens t = tokenizer.getSpecialTokens();
            assertEquals(SpecialTokens.llama2c(), t);
            assertEquals(OptionalInt.of(1), t.getBosId());
            assertArrayEquals(new int[] {2}, t.getEosIds());
            assertEquals(2, t.getAppendedEosId());
            assertTrue(t.isAddBos());
            assertEquals(OptionalInt.empty(), t.getPadId());
            assertEquals(1, tokenizer.encodeStart("Once")[0]);
        }
    }
}
