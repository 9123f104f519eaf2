package org.peft4j.models.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.testing.Fixtures;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** The llama2.c tokenizer on the stories260K vocabulary ("tok512"). */
class Llama2cTokenizerTest {

    private static Llama2cTokenizer fixture() throws IOException {
        return Llama2cTokenizer.load(Fixtures.stories260K().resolve("tokenizer.bin"));
    }

    @Test
    void readsTheVocabularyAndSpecialIds() throws IOException {
        Llama2cTokenizer tokenizer = fixture();
        assertEquals(512, tokenizer.getVocabSize());
        assertEquals(1, tokenizer.getBosTokenId());
        assertEquals(2, tokenizer.getSpecialTokens().getAppendedEosId());
    }

    @Test
    void piecesMatchTheFileReadIndependently() throws IOException {
        Path file = Fixtures.stories260K().resolve("tokenizer.bin");
        List<String> pieces = readPieces(Files.readAllBytes(file));
        assertEquals(512, pieces.size());
        Llama2cTokenizer tokenizer = Llama2cTokenizer.load(file);
        for (int id : new int[] {0, 1, 2, 3, 258, 259, 265, 403, 511}) {
            assertEquals(pieces.get(id), tokenizer.getPiece(id), "piece " + id);
        }
        assertEquals("<0x00>", tokenizer.getPiece(3));
        assertEquals("<0xFF>", tokenizer.getPiece(258));
        assertEquals(" the", tokenizer.getPiece(265));
    }

    @Test
    void encodesOnceUponATimeAsLlama2cDoes() throws IOException {
        Llama2cTokenizer tokenizer = fixture();
        // ids from a Python port of llama2.c's encode: BOS " Once" " upon" " a" " time"
        int[] ids = tokenizer.encode("Once upon a time", true, false);
        assertArrayEquals(new int[] {1, 403, 407, 261, 378}, ids);
        assertEquals("Once upon a time", tokenizer.decode(ids));
        assertArrayEquals(
                new int[] {403, 407, 261, 378, 2},
                tokenizer.encode("Once upon a time", false, true));
        // without BOS, the dummy prefix stays, as in llama2.c
        assertEquals(" Once upon a time", tokenizer.decode(new int[] {403, 407, 261, 378, 2}));
    }

    @Test
    void roundTripsSpacesPunctuationDigitsAndNewlines() throws IOException {
        Llama2cTokenizer tokenizer = fixture();
        for (String text :
                new String[] {
                    "",
                    " ",
                    "  leading and trailing  ",
                    "multiple   spaces\there",
                    "Hello, world! It's 12:30; 3.14 + 2 = 5.14?",
                    "line one\nline two\n\n\"quoted\" (parens) [brackets] {braces}",
                    "\n starts with a newline",
                }) {
            int[] ids = tokenizer.encode(text, true, true);
            assertEquals(1, ids[0]);
            assertEquals(2, ids[ids.length - 1]);
            assertEquals(text, tokenizer.decode(ids), Arrays.toString(ids));
        }
    }

    @Test
    void charactersOutsideTheVocabularyGoThroughByteTokens() throws IOException {
        Llama2cTokenizer tokenizer = fixture();
        String text = "naïve café — 你好 🙂";
        int[] ids = tokenizer.encode(text, true, false);
        assertEquals(text, tokenizer.decode(ids));
        // ï is C3 AF, 你 is E4 BD A0, 🙂 is F0 9F 99 82: byte tokens are byte + 3
        List<Integer> list = Arrays.stream(ids).boxed().toList();
        for (int b : new int[] {0xC3, 0xAF, 0xE4, 0xBD, 0xA0, 0xF0, 0x9F, 0x99, 0x82}) {
            assertTrue(list.contains(b + 3), "byte token of " + b + " in " + list);
        }
        // the Python port of llama2.c gives exactly this
        int[] expected = {
            1, 297, 412, 198, 178, 360, 280, 412, 431, 485, 410, 481, 410, 231, 192, 163, 232, 168,
            192, 410, 243, 162, 156, 133
        };
        assertArrayEquals(expected, ids);
    }

    @Test
    void decodeRejectsIdsOutsideTheVocabulary() throws IOException {
        Llama2cTokenizer tokenizer = fixture();
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class, () -> tokenizer.decode(new int[] {512}));
        assertTrue(e.getMessage().contains("512"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> tokenizer.decode(new int[] {-1}));
    }

    @Test
    void truncatedFileFailsNamingThePath(@TempDir Path dir) throws IOException {
        byte[] bytes = Files.readAllBytes(Fixtures.stories260K().resolve("tokenizer.bin"));
        Path truncated = dir.resolve("truncated.bin");
        Files.write(truncated, Arrays.copyOf(bytes, bytes.length - 3));
        IOException e = assertThrows(IOException.class, () -> Llama2cTokenizer.load(truncated));
        assertTrue(e.getMessage().contains(truncated.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("truncated in token 511"), e.getMessage());
    }

    @Test
    void negativeLengthAndTooFewTokensFail(@TempDir Path dir) throws IOException {
        Path negative = dir.resolve("negative.bin");
        Files.write(negative, new TinyVocab(4).add("a", 0f).add(-5, 0f).bytes());
        IOException e = assertThrows(IOException.class, () -> Llama2cTokenizer.load(negative));
        assertTrue(e.getMessage().contains("token 1 has length -5"), e.getMessage());

        Path tooLong = dir.resolve("too-long.bin");
        Files.write(tooLong, new TinyVocab(1).add("ab", 0f).bytes());
        e = assertThrows(IOException.class, () -> Llama2cTokenizer.load(tooLong));
        assertTrue(e.getMessage().contains("token 0 has length 2"), e.getMessage());

        Path twoTokens = dir.resolve("two.bin");
        Files.write(twoTokens, new TinyVocab(4).add("a", 0f).add("b", 0f).bytes());
        e = assertThrows(IOException.class, () -> Llama2cTokenizer.load(twoTokens));
        assertTrue(e.getMessage().contains(twoTokens + ": "), e.getMessage());
    }

    /** Reads the pieces of a tokenizer.bin without the class under test. */
    private static List<String> readPieces(byte[] file) {
        ByteBuffer buf = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        buf.getInt(); // max_token_length
        List<String> pieces = new ArrayList<>();
        while (buf.hasRemaining()) {
            buf.getFloat(); // score
            byte[] piece = new byte[buf.getInt()];
            buf.get(piece);
            pieces.add(new String(piece, StandardCharsets.UTF_8));
        }
        return pieces;
    }
}
