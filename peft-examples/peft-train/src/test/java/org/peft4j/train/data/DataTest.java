package org.peft4j.train.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.models.tokenizer.TinyVocab;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

class DataTest {

    @TempDir static Path shared;

    private static LlamaTokenizer chars;

    /** One token per character, from id 3, after unk, BOS and EOS (as the demo's vocabulary). */
    private static final String CHARACTERS =
            " abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:>0123456789";

    @BeforeAll
    static void setUp() throws IOException {
        TinyVocab vocab = new TinyVocab(8).add("<unk>", 0f).add("\n<s>\n", 0f).add("\n</s>\n", 0f);
        for (char c : CHARACTERS.toCharArray()) {
            vocab.add(String.valueOf(c), 0f);
        }
        Files.write(shared.resolve("tokenizer.bin"), vocab.bytes());
        chars = LlamaTokenizer.load(shared.resolve("tokenizer.bin"));
    }

    /** The character tokenizer's ids, computed independently: dummy space, then each char. */
    private static int[] ids(String text) {
        String spaced = text.isEmpty() ? "" : " " + text;
        int[] out = new int[spaced.length()];
        for (int i = 0; i < spaced.length(); i++) {
            out[i] = 3 + CHARACTERS.indexOf(spaced.charAt(i));
        }
        return out;
    }

    private static int[] concat(int[]... parts) {
        int length = 0;
        for (int[] part : parts) {
            length += part.length;
        }
        int[] out = new int[length];
        int at = 0;
        for (int[] part : parts) {
            System.arraycopy(part, 0, out, at, part.length);
            at += part.length;
        }
        return out;
    }

    private static int[] ignore(int n) {
        int[] out = new int[n];
        java.util.Arrays.fill(out, -100);
        return out;
    }

    @Test
    void readsSeedAndAlpacaLinesAndNamesTheBadLine(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("train.jsonl");
        Files.writeString(
                file,
                "{\"src\": \"q\", \"tgt\": \"a\"}\n"
                        + "\n"
                        + "{\"src\": [\"q1\", \"q2\"], \"tgt\": [\"a1\", \"a2\"]}\n"
                        + "{\"instruction\": \"Add\", \"input\": \"1 2\", \"output\": \"3\"}\n"
                        + "{\"instruction\": \"Greet\", \"output\": \"hi\"}\n");
        List<Example> examples = JsonlExamples.read(file, false);
        assertEquals(4, examples.size());
        assertEquals(Example.of("q", "a"), examples.get(0));
        assertEquals(List.of("q1", "q2"), examples.get(1).sources());
        assertEquals(Example.of("Add\n\n1 2", "3"), examples.get(2));
        assertEquals(Example.of("Greet", "hi"), examples.get(3));

        Files.writeString(file, "{\"src\": \"q\", \"tgt\": \"a\"}\n{\"src\": \"q\"}\nnot json\n");
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> JsonlExamples.read(file, false));
        assertTrue(
                e.getMessage().startsWith(file + ":2: field \"tgt\" is missing"), e.getMessage());
        assertEquals(1, JsonlExamples.read(file, true).size(), "skipping keeps the good line");

        Files.writeString(file, "\n\n");
        e = assertThrows(IllegalArgumentException.class, () -> JsonlExamples.read(file, false));
        assertTrue(e.getMessage().contains("holds no examples"), e.getMessage());
    }

    @Test
    void oneRoundFollowsTheSeedsTruncationAndLabels() {
        ExampleEncoder encoder = new ExampleEncoder(chars, 6, 12);
        // fits: BOS + " ab" (4) then " xy" + EOS, labels on the target
        TokenizedExample fits = encoder.encode(Example.of("ab", "xy"));
        assertArrayEquals(
                concat(new int[] {1}, ids("ab"), ids("xy"), new int[] {2}), fits.inputIds());
        assertArrayEquals(concat(ignore(4), ids("xy"), new int[] {2}), fits.labels());

        // source longer than src_length: BOS kept, the left of the text cut
        TokenizedExample cut = encoder.encode(Example.of("abcdefgh", "x"));
        int[] source = ids("abcdefgh"); // 9 tokens with the dummy space; 5 fit after BOS
        int[] kept = java.util.Arrays.copyOfRange(source, source.length - 5, source.length);
        assertArrayEquals(concat(new int[] {1}, kept, ids("x"), new int[] {2}), cut.inputIds());

        // target longer than max_length - len(source): cut on the right and no EOS
        TokenizedExample longTarget = encoder.encode(Example.of("ab", "uvwxyzuvwxyz"));
        assertEquals(12, longTarget.inputIds().length);
        assertNotEquals(2, longTarget.inputIds()[11], "a cut target gets no EOS");
        assertArrayEquals(
                java.util.Arrays.copyOf(ids("uvwxyzuvwxyz"), 8),
                java.util.Arrays.copyOfRange(longTarget.inputIds(), 4, 12));

        // exactly max_length - len(source) target tokens: not cut, but no room for EOS either
        TokenizedExample exact = encoder.encode(Example.of("ab", "uvwxyzu"));
        assertEquals(12, exact.inputIds().length);
        assertNotEquals(2, exact.inputIds()[11]);
    }

    @Test
    void severalRoundsLearnEveryAnswerAndDropTheOldestWhenTooLong() {
        ExampleEncoder encoder = new ExampleEncoder(chars, 8, 20);
        Example chat = new Example(List.of("a", "b"), List.of("x", "y"));
        TokenizedExample both = encoder.encode(chat);
        int[] expectedIds =
                concat(
                        new int[] {1},
                        ids("a"),
                        ids("x"),
                        new int[] {2},
                        ids("b"),
                        ids("y"),
                        new int[] {2});
        int[] expectedLabels =
                concat(ignore(3), ids("x"), new int[] {2}, ignore(2), ids("y"), new int[] {2});
        assertArrayEquals(expectedIds, both.inputIds());
        assertArrayEquals(expectedLabels, both.labels());

        ExampleEncoder tight = new ExampleEncoder(chars, 8, 12);
        Example longChat = new Example(List.of("aaaa", "b"), List.of("xxxx", "y"));
        TokenizedExample last = tight.encode(longChat);
        assertArrayEquals(
                concat(new int[] {1}, ids("b"), ids("y"), new int[] {2}), last.inputIds());
    }

    @Test
    void shufflingIsSeededPerEpoch() {
        List<TokenizedExample> examples = new java.util.ArrayList<>();
        for (int i = 0; i < 50; i++) {
            examples.add(new TokenizedExample(new int[] {i}, new int[] {i}));
        }
        Dataset a = new Dataset(examples, 7);
        Dataset b = new Dataset(examples, 7);
        assertEquals(a.order(0), b.order(0));
        assertEquals(a.order(3), b.order(3));
        assertNotEquals(a.order(0), a.order(1), "each epoch has its own order");
        assertNotEquals(a.order(0), new Dataset(examples, 8).order(0));
        assertEquals(2, a.slice(0, 48, 8).size(), "the epoch's last batch is short");
        assertThrows(IllegalArgumentException.class, () -> new Dataset(List.of(), 1));
    }

    @Test
    void bytesThatAreNotUtf8AreNamedByFileLineAndOffset(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("latin1.jsonl");
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        bytes.writeBytes("{\"src\": \"q\", \"tgt\": \"a\"}\r\n".getBytes(StandardCharsets.UTF_8));
        bytes.writeBytes("{\"src\": \"caf".getBytes(StandardCharsets.UTF_8));
        bytes.write(0xE9); // "é" in Latin-1: not UTF-8
        bytes.writeBytes("\", \"tgt\": \"b\"}\n".getBytes(StandardCharsets.UTF_8));
        bytes.writeBytes(
                "{\"src\": \"caf\u00e9\", \"tgt\": \"c\"}\n".getBytes(StandardCharsets.UTF_8));
        Files.write(file, bytes.toByteArray());
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> JsonlExamples.read(file, false));
        // line 1 is 26 bytes with its CR LF; the bad byte is the 13th of line 2
        assertEquals(
                file
                        + ":2: not valid UTF-8 at byte 13 of the line (offset 38 of the file):"
                        + " 0xE9; save the file as UTF-8 (pass --skip-malformed to skip such"
                        + " lines)",
                e.getMessage());
        List<Example> read = JsonlExamples.read(file, true);
        assertEquals(List.of(Example.of("q", "a"), Example.of("caf\u00e9", "c")), read);
    }
}
