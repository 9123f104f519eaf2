package org.peft4j.models.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * BPE by merge score on a vocabulary written by hand, with the expected ids worked out by hand.
 *
 * <p>Ids: 0 unk, 1 BOS, 2 EOS, 3..258 the bytes (byte + 3), then
 *
 * <pre>
 *   259 " "     260 "a"     261 "b"     262 "c"
 *   263 " a"  1.0   264 "ab"  2.0   265 " ab" 0.5   266 "bc" 3.0   267 "abc" -5.0   268 "cc" 3.0
 * </pre>
 */
class Llama2cTokenizerMergeTest {

    @TempDir static Path dir;
    private static Llama2cTokenizer tokenizer;

    @BeforeAll
    static void writeVocabulary() throws IOException {
        TinyVocab vocab = TinyVocab.withSpecialAndByteTokens(6);
        vocab.add(" ", 0f).add("a", 0f).add("b", 0f).add("c", 0f);
        vocab.add(" a", 1f).add("ab", 2f).add(" ab", 0.5f).add("bc", 3f).add("abc", -5f);
        vocab.add("cc", 3f);
        Path file = dir.resolve("tiny.bin");
        Files.write(file, vocab.bytes());
        tokenizer = Llama2cTokenizer.load(file);
    }

    @Test
    void vocabularySizeIsWhatTheFileHolds() {
        assertEquals(269, tokenizer.getVocabSize());
    }

    @Test
    void mergesTheHighestScoreFirst() {
        // " ab": [" ", a, b]; pairs " a" 1.0, "ab" 2.0 -> [" ", ab]; " ab" 0.5 -> [" ab"]
        assertArrayEquals(new int[] {265}, tokenizer.encode("ab", false, false));
        // " abc": [" ", a, b, c]; " a" 1.0, "ab" 2.0, "bc" 3.0 -> [" ", a, bc];
        // " a" 1.0, "abc" -5.0 -> [" a", bc]; " abc" is not a piece -> done.
        // (Merging left to right instead would give [" ab", c] = [265, 262].)
        assertArrayEquals(new int[] {263, 266}, tokenizer.encode("abc", false, false));
    }

    @Test
    void tiesGoToTheLeftmostPair() {
        // " bcc": [" ", b, c, c]; "bc" 3.0 and "cc" 3.0 tie -> the left one: [" ", bc, c];
        // " bc" and "bcc" are not pieces -> done.
        assertArrayEquals(new int[] {259, 266, 262}, tokenizer.encode("bcc", false, false));
        // " ccc": [" ", c, c, c]; "cc" twice -> the left one: [" ", cc, c]
        assertArrayEquals(new int[] {259, 268, 262}, tokenizer.encode("ccc", false, false));
    }

    @Test
    void unknownCharactersBecomeByteTokensThatDoNotMerge() {
        // é is C3 A9: byte tokens 0xC3 + 3 = 198 and 0xA9 + 3 = 172; " a" merges, bytes do not
        int[] ids = tokenizer.encode("aé", true, true);
        assertArrayEquals(new int[] {1, 263, 198, 172, 2}, ids);
        assertEquals("aé", tokenizer.decode(ids));
    }

    @Test
    void emptyTextHasNoDummyPrefix() {
        assertArrayEquals(new int[0], tokenizer.encode("", false, false));
        assertArrayEquals(new int[] {1, 2}, tokenizer.encode("", true, true));
        assertEquals("", tokenizer.decode(new int[] {1, 2}));
    }

    @Test
    void decodeDropsOneLeadingSpaceAfterBos() {
        // " a" after BOS loses its space; without BOS it keeps it
        assertEquals("a", tokenizer.decode(new int[] {1, 263}));
        assertEquals(" a", tokenizer.decode(new int[] {263}));
        // a text starting with a space: [" ", " a"], the dummy " " is the one dropped
        int[] ids = tokenizer.encode(" a", true, false);
        assertArrayEquals(new int[] {1, 259, 263}, ids);
        assertEquals(" a", tokenizer.decode(ids));
        // a character split over byte tokens in two calls would break; together it is whole
        assertEquals("é", tokenizer.decode(new int[] {198, 172}));
    }
}
