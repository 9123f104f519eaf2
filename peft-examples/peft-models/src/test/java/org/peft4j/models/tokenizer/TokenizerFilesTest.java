package org.peft4j.models.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.testing.Fixtures;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** {@link LlamaTokenizer#load} and {@link LlamaTokenizer#findNextTo}. */
class TokenizerFilesTest {

    @Test
    void findsTokenizerBinInTheModelDirectoryOrNextToAModelFile() throws IOException {
        Path model = Fixtures.stories260K();
        for (Path where : new Path[] {model, model.resolve("stories260K.bin")}) {
            try (LlamaTokenizer tokenizer = LlamaTokenizer.findNextTo(where)) {
                assertInstanceOf(Llama2cTokenizer.class, tokenizer);
                assertEquals(512, tokenizer.getVocabSize());
            }
        }
    }

    @Test
    void prefersTokenizerJson(@TempDir Path dir) throws IOException {
        String json = HuggingFaceLlamaTokenizerTest.llama2Json();
        Files.writeString(dir.resolve("tokenizer.json"), json);
        Files.write(dir.resolve("tokenizer.bin"), new byte[] {1}); // would not load
        try (LlamaTokenizer tokenizer = LlamaTokenizer.findNextTo(dir)) {
            assertInstanceOf(HuggingFaceLlamaTokenizer.class, tokenizer);
        }
    }

    @Test
    void emptyDirectoryFailsNamingWhatWasLookedFor(@TempDir Path dir) {
        NoSuchFileException e =
                assertThrows(NoSuchFileException.class, () -> LlamaTokenizer.findNextTo(dir));
        String message = e.getMessage();
        assertTrue(message.contains("tokenizer.json"), message);
        assertTrue(message.contains("tokenizer.bin"), message);
        assertTrue(message.contains(dir.toAbsolutePath().toString()), message);
    }

    @Test
    void missingFileFailsNamingIt(@TempDir Path dir) {
        Path missing = dir.resolve("nope.bin");
        NoSuchFileException e =
                assertThrows(NoSuchFileException.class, () -> LlamaTokenizer.load(missing));
        assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());
        assertThrows(NoSuchFileException.class, () -> LlamaTokenizer.findNextTo(missing));
    }

    @Test
    void loadPicksTheImplementationByExtension(@TempDir Path dir) throws IOException {
        Path bin = dir.resolve("tok.model");
        Files.write(bin, TinyVocab.withSpecialAndByteTokens(6).bytes());
        try (LlamaTokenizer tokenizer = LlamaTokenizer.load(bin)) {
            assertInstanceOf(Llama2cTokenizer.class, tokenizer);
            assertEquals(259, tokenizer.getVocabSize());
        }
        Path json = dir.resolve("Tokenizer.JSON");
        Files.writeString(json, HuggingFaceLlamaTokenizerTest.llama2Json());
        try (LlamaTokenizer tokenizer = LlamaTokenizer.load(json)) {
            assertInstanceOf(HuggingFaceLlamaTokenizer.class, tokenizer);
        }
    }
}
