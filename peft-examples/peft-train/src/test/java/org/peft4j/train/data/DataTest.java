package org.peft4j.train.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.models.llama.LlamaConfig;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.models.tokenizer.SpecialTokens;
import org.peft4j.models.tokenizer.WithSpecialTokens;
import org.peft4j.models.tokenizer.TinyVocab;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
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
        TokenizedExample fits = encoder.encode(Example.of("ab", "xy")).orElseThrow();
        assertArrayEquals(
                concat(new int[] {1}, ids("ab"), ids("xy"), new int[] {2}), fits.inputIds());
        assertArrayEquals(concat(ignore(4), ids("xy"), new int[] {2}), fits.labels());

        // source longer than src_length: BOS kept, the left of the text cut
        TokenizedExample cut = encoder.encode(Example.of("abcdefgh", "x")).orElseThrow();
        int[] source = ids("abcdefgh"); // 9 tokens with the dummy space; 5 fit after BOS
        int[] kept = java.util.Arrays.copyOfRange(source, source.length - 5, source.length);
        assertArrayEquals(concat(new int[] {1}, kept, ids("x"), new int[] {2}), cut.inputIds());

        // target longer than max_length - len(source): cut on the right and no EOS
        TokenizedExample longTarget =
                encoder.encode(Example.of("ab", "uvwxyzuvwxyz")).orElseThrow();
        assertEquals(12, longTarget.inputIds().length);
        assertNotEquals(2, longTarget.inputIds()[11], "a cut target gets no EOS");
        assertArrayEquals(
                java.util.Arrays.copyOf(ids("uvwxyzuvwxyz"), 8),
                java.util.Arrays.copyOfRange(longTarget.inputIds(), 4, 12));

        // exactly max_length - len(source) target tokens: not cut, but no room for EOS either
        TokenizedExample exact = encoder.encode(Example.of("ab", "uvwxyzu")).orElseThrow();
        assertEquals(12, exact.inputIds().length);
        assertNotEquals(2, exact.inputIds()[11]);
    }

    @Test
    void aTokenizerWithoutBosGetsNoneAndItsOwnAppendedEos() {
        // as Qwen: no BOS added, examples end with eos_token (here 5, while 2 also stops)
        SpecialTokens qwenLike =
                SpecialTokens.builder().optBosId(1).setEosIds(4, 2).optAppendedEosId(5).build();
        ExampleEncoder encoder = new ExampleEncoder(new WithSpecialTokens(chars, qwenLike), 6, 12);
        TokenizedExample fits = encoder.encode(Example.of("ab", "xy")).orElseThrow();
        assertArrayEquals(concat(ids("ab"), ids("xy"), new int[] {5}), fits.inputIds());
        assertArrayEquals(concat(ignore(3), ids("xy"), new int[] {5}), fits.labels());
        // a long source is cut on the left with no BOS to keep: its last 6 tokens
        TokenizedExample cut = encoder.encode(Example.of("abcdefgh", "x")).orElseThrow();
        int[] source = ids("abcdefgh");
        int[] kept = java.util.Arrays.copyOfRange(source, source.length - 6, source.length);
        assertArrayEquals(concat(kept, ids("x"), new int[] {5}), cut.inputIds());
        // several rounds: no BOS before the first source either
        TokenizedExample chat =
                encoder.encode(new Example(List.of("a", "b"), List.of("x", "y"))).orElseThrow();
        assertEquals(ids("a")[0], chat.inputIds()[0]);
    }

    @Test
    void severalRoundsLearnEveryAnswerAndDropTheOldestWhenTooLong() {
        ExampleEncoder encoder = new ExampleEncoder(chars, 8, 20);
        Example chat = new Example(List.of("a", "b"), List.of("x", "y"));
        TokenizedExample both = encoder.encode(chat).orElseThrow();
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
        TokenizedExample last = tight.encode(longChat).orElseThrow();
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

    /** A stories260K example of a given length: a 10-token source and a long story target. */
    private static Example storyOf(LlamaTokenizer tokenizer, int tokens) {
        String source = "Tell me a story.";
        StringBuilder story = new StringBuilder();
        String sentence = "Once upon a time, there was a little girl named Lily. ";
        int length;
        do {
            story.append(sentence);
            length =
                    tokenizer.encode(source, true, false).length
                            + tokenizer.encode(story.toString(), false, false).length
                            + 1;
        } while (length < tokens);
        return Example.of(source, story.toString());
    }

    @Test
    void examplesLongerThanTheModelsContextAreCutOrDroppedAndCounted() throws IOException {
        LlamaConfig stories =
                LlamaConfig.fromJson(Fixtures.stories260K().resolve("config.json"));
        try (LlamaTokenizer tokenizer = LlamaTokenizer.findNextTo(Fixtures.stories260K())) {
            Example longOne = storyOf(tokenizer, 1031);
            Example shortOne = Example.of("Tell me a story.", "Once upon a time.");
            List<Example> examples = List.of(shortOne, longOne, shortOne);

            // the default max length is the model's context when it is shorter than 2048
            ExampleEncoder encoder =
                    ExampleEncoder.builder(tokenizer)
                            .optMaxPositions(stories.getMaxPositionEmbeddings())
                            .build();
            assertEquals(512, encoder.getMaxLength());
            assertEquals(256, encoder.getSrcLength(), "half the max length, 1024 not being below");
            assertEquals(Overlong.TRUNCATE, encoder.getOverlong());
            ExampleEncoder.Encoded cut = encoder.encodeAll(examples, "stories");
            assertEquals(3, cut.examples().size());
            assertEquals(1, cut.truncated());
            assertEquals(0, cut.dropped());
            assertEquals(512, encoder.encode(longOne).orElseThrow().inputIds().length);
            assertEquals(
                    encoder.encode(shortOne).orElseThrow().inputIds().length,
                    cut.examples().get(0).inputIds().length,
                    "a fitting example is whole");

            ExampleEncoder dropping =
                    ExampleEncoder.builder(tokenizer)
                            .optMaxPositions(512)
                            .optOverlong(Overlong.DROP)
                            .build();
            ExampleEncoder.Encoded kept = dropping.encodeAll(examples, "stories");
            assertEquals(2, kept.examples().size());
            assertEquals(1, kept.dropped());
            assertEquals(0, kept.truncated());
            assertTrue(dropping.encode(longOne).isEmpty());

            // a max length past the context is refused, naming both
            IllegalArgumentException e =
                    assertThrows(
                            IllegalArgumentException.class,
                            () ->
                                    ExampleEncoder.builder(tokenizer)
                                            .optMaxPositions(512)
                                            .optMaxLength(2048)
                                            .build());
            assertEquals(
                    "maxLength 2048 is longer than the model's context of 512 positions; use at"
                            + " most 512",
                    e.getMessage());
            e =
                    assertThrows(
                            IllegalArgumentException.class,
                            () ->
                                    ExampleEncoder.builder(tokenizer)
                                            .optMaxLength(256)
                                            .optSrcLength(256)
                                            .build());
            assertEquals(
                    "need 0 < srcLength < maxLength, got srcLength 256 and maxLength 256",
                    e.getMessage());
        }
    }

    @Test
    void theDefaultLengthsAreTheSeedsWhereTheContextAllows() {
        ExampleEncoder unlimited = ExampleEncoder.builder(chars).build();
        assertEquals(2048, unlimited.getMaxLength());
        assertEquals(1024, unlimited.getSrcLength());
        ExampleEncoder between = ExampleEncoder.builder(chars).optMaxPositions(1500).build();
        assertEquals(1500, between.getMaxLength());
        assertEquals(1024, between.getSrcLength(), "1024 is below 1500: the seed's default");
        ExampleEncoder given = ExampleEncoder.builder(chars).optMaxLength(12).build();
        assertEquals(6, given.getSrcLength());
    }

    @Test
    void oneOverlongExampleEncodedAloneIsLoggedWithItsLength() {
        Example longOne = Example.of("ab", "uvwxyzu");
        int length =
                chars.encode("ab", true, false).length
                        + chars.encode("uvwxyzu", false, false).length
                        + 1;
        assertTrue(length > 12, "longer than the max length");
        PrintStream err = System.err;
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        try {
            System.setErr(new PrintStream(log, true, StandardCharsets.UTF_8));
            new ExampleEncoder(chars, 8, 12).encode(longOne);
            ExampleEncoder.builder(chars)
                    .optMaxLength(12)
                    .optOverlong(Overlong.DROP)
                    .build()
                    .encode(longOne);
        } finally {
            System.setErr(err);
        }
        String logged = log.toString(StandardCharsets.UTF_8);
        String start = "an example of " + length + " tokens is longer than the max length of 12";
        assertTrue(
                logged.contains(start + " tokens and was cut to it (overlong examples: truncate)"),
                logged);
        assertTrue(
                logged.contains(start + " tokens and was left out (overlong examples: drop)"),
                logged);
    }

    @Test
    void everyCutIsCountedConversationsAndSourcesToo() {
        ExampleEncoder encoder = new ExampleEncoder(chars, 8, 12);
        List<Example> examples =
                List.of(
                        Example.of("ab", "xy"), // fits: 4 + 3 + 1
                        Example.of("abcdefg", "x"), // 9 + 2 + 1 fits in 12; its source exceeds 8
                        Example.of("ab", "uvwxyzu"), // 4 + 8 + EOS = 13: loses its EOS
                        new Example(List.of("aaaa", "b"), List.of("xxxx", "y"))); // drops a round
        ExampleEncoder.Encoded encoded = encoder.encodeAll(examples, "chars");
        assertEquals(4, encoded.read());
        assertEquals(4, encoded.examples().size());
        assertEquals(2, encoded.truncated());
        assertEquals(1, encoded.sourcesCut());
        ExampleEncoder.Encoded dropped =
                ExampleEncoder.builder(chars)
                        .optSrcLength(8)
                        .optMaxLength(12)
                        .optOverlong(Overlong.DROP)
                        .build()
                        .encodeAll(examples, "chars");
        assertEquals(2, dropped.dropped());
        assertEquals(1, dropped.sourcesCut());
        assertEquals(2, dropped.examples().size(), "the two that fit");
        for (int i = 0; i < 2; i++) {
            assertArrayEquals(
                    encoded.examples().get(i).inputIds(), dropped.examples().get(i).inputIds());
        }
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
