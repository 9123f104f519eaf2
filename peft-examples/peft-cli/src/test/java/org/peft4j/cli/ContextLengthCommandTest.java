package org.peft4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.models.tokenizer.LlamaTokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Lengths past stories260K's 512 positions, and data that is not UTF-8, on the command line: each
 * ends in one line {@code peft4j <command>: ...} naming the lengths, the context and the options
 * (or the file, line and byte), or, where an option asks for it, a run that cuts or drops and says
 * how many.
 */
class ContextLengthCommandTest {

    private static final String MODEL = Fixtures.stories260K().toString();
    private static final String CONTEXT =
            MODEL + " has 512 positions (max_position_embeddings)";

    /** A story of exactly 1472 tokens with BOS, as the prompt the issue was filed with. */
    private static String longPrompt;

    /** A training example of 1031 tokens (BOS, source, target, EOS). */
    private static String longExample;

    /** The tokens of "Once upon a time" with BOS. */
    private static int onceTokens;

    private static final String SHORT_EXAMPLE =
            "{\"src\": \"Tell me a story.\", \"tgt\": \"Once upon a time, there was a dog.\"}";

    @BeforeAll
    static void setUp() throws Exception {
        try (LlamaTokenizer tokenizer = LlamaTokenizer.findNextTo(Fixtures.stories260K())) {
            longPrompt = grow(tokenizer, "", 1472, true);
            onceTokens = tokenizer.encode("Once upon a time", true, false).length;
            String source = "Tell me a story.";
            int sourceTokens = tokenizer.encode(source, true, false).length;
            String target = grow(tokenizer, "", 1031 - sourceTokens - 1, false);
            longExample =
                    new ObjectMapper()
                            .createObjectNode()
                            .put("src", source)
                            .put("tgt", target)
                            .toString();
        }
    }

    /**
     * Makes a story exactly {@code tokens} long. Tokenising a long text is slow (the llama2.c
     * merges are quadratic), so the words are counted one by one (a word's tokens do not merge
     * across the space before the next), and the whole is tokenised only to check.
     */
    private static String grow(LlamaTokenizer tokenizer, String start, int tokens, boolean bos) {
        String[] words = "Once upon a time, there was a little girl named Lily.".split(" ");
        int[] counts = new int[words.length];
        for (int i = 0; i < words.length; i++) {
            counts[i] = tokenizer.encode(words[i], false, false).length; // with its space
        }
        int oneToken = tokenizer.encode("a", false, false).length;
        assertEquals(1, oneToken, "\" a\" is one token");
        StringBuilder text = new StringBuilder(start);
        int count = bos ? 1 : 0;
        for (int i = 0; count + counts[i % words.length] <= tokens; i++) {
            text.append(text.length() == 0 ? "" : " ").append(words[i % words.length]);
            count += counts[i % words.length];
        }
        while (count < tokens) {
            text.append(text.length() == 0 ? "a" : " a");
            count++;
        }
        String story = text.toString();
        assertEquals(tokens, tokenizer.encode(story, bos, false).length, "counted word by word");
        return story;
    }

    /**
     * Asserts that a run failed with exit status 1 and without a stack trace, and returns the one
     * {@code peft4j <command>: } line of its standard error, less that start.
     */
    private static String refused(String command, String[] result) {
        assertEquals("1", result[0], result[2]);
        String start = "peft4j " + command + ": ";
        List<String> ours = result[2].lines().filter(l -> l.startsWith(start)).toList();
        assertEquals(1, ours.size(), result[2]);
        assertFalse(result[2].contains("\tat "), "no stack trace: " + result[2]);
        return ours.get(0).substring(start.length());
    }

    /** Runs {@code finetune} on stories260K with the data into {@code out}, and more options. */
    private static String[] finetune(Path train, Path out, String... options) {
        List<String> args =
                new ArrayList<>(
                        List.of(
                                "finetune", "--model", MODEL, "--train", train.toString(),
                                "--output", out.toString()));
        args.addAll(List.of(options));
        return CliRunner.run(args.toArray(String[]::new));
    }

    /** Asserts that a run succeeded and logged a line holding {@code text}. */
    private static void assertLogged(String[] result, String text) {
        assertEquals("0", result[0], result[2]);
        assertTrue(result[2].contains(text), result[2]);
    }

    private static Path data(Path dir, String name, String... lines) throws Exception {
        Path file = dir.resolve(name);
        Files.write(file, List.of(lines), StandardCharsets.UTF_8);
        return file;
    }

    @Test
    void aLongPromptIsAnErrorNamingBothLengthsAndTheContext() {
        String[] result = CliRunner.run("generate", "--model", MODEL, "--prompt", longPrompt);
        assertEquals(
                "the prompt (1472 tokens) and --max-new-tokens 256 need 1728 positions, more than"
                        + " the model's context: "
                        + CONTEXT
                        + "; shorten the prompt, lower --max-new-tokens, or pass --truncate-prompt"
                        + " left to keep the prompt's first token and its last 255",
                refused("generate", result));
        assertEquals("", result[1], "nothing generated");

        // a prompt that fits alone, but not with its new tokens
        assertEquals(
                "the prompt ("
                        + onceTokens
                        + " tokens) and --max-new-tokens 510 need "
                        + (onceTokens + 510)
                        + " positions, more than the model's context: "
                        + CONTEXT
                        + "; shorten the prompt, lower --max-new-tokens to "
                        + (512 - onceTokens)
                        + ", or pass --truncate-prompt left to keep the prompt's first token and"
                        + " its last 1",
                refused(
                        "generate",
                        CliRunner.run(
                                "generate", "--model", MODEL, "--prompt", "Once upon a time",
                                "--max-new-tokens", "510")));
    }

    @Test
    void leftTruncationKeepsTheEndOfTheLongPrompt() {
        String[] result =
                CliRunner.run(
                        "generate", "--model", MODEL, "--prompt", longPrompt, "--max-new-tokens",
                        "20", "--truncate-prompt", "left");
        assertLogged(
                result,
                "the prompt of 1472 tokens cut on the left to 492 (its first token and its last"
                        + " 491), leaving room for 20 new tokens in the model's context of 512");
        // what is printed is the kept end of the prompt and its continuation
        String tail = longPrompt.substring(longPrompt.length() - 200);
        assertTrue(result[1].contains(tail), result[1]);
        assertFalse(result[1].startsWith(longPrompt.substring(0, 200)), "the start is cut");
        // the tokens counted are the generated ones, not the prompt's length less the cut one's
        Matcher count = Pattern.compile("GenerateCommand - (\\d+) tokens in ").matcher(result[2]);
        assertTrue(count.find(), result[2]);
        int generated = Integer.parseInt(count.group(1));
        assertTrue(generated >= 1 && generated <= 20, result[2]);

        assertEquals(
                "--max-new-tokens 512 leaves no room for the prompt in the model's context: "
                        + CONTEXT
                        + "; use --max-new-tokens 511 or less",
                refused(
                        "generate",
                        CliRunner.run(
                                "generate", "--model", MODEL, "--prompt", longPrompt,
                                "--max-new-tokens", "512", "--truncate-prompt", "left")));
    }

    @Test
    void storiesLongerThanTheContextAreRefused(@TempDir Path dir) {
        assertEquals(
                "--max-new-tokens 600 is longer than the model's context: a story of BOS and 600"
                        + " tokens needs 601 positions, and "
                        + CONTEXT
                        + "; use --max-new-tokens 511 or less",
                refused(
                        "stories",
                        CliRunner.run(
                                "stories", "--model", MODEL, "--samples", "2",
                                "--max-new-tokens", "600", "--output",
                                dir.resolve("s.jsonl").toString())));
        assertFalse(Files.exists(dir.resolve("s.jsonl")), "nothing written");
    }

    @Test
    void aLongTrainingExampleIsTruncatedByDefaultAndCounted(@TempDir Path dir) throws Exception {
        Path train = data(dir, "train.jsonl", SHORT_EXAMPLE, longExample);
        String overlong = train + ": 1 of 2 examples are longer than the max length of 512 tokens";
        assertLogged(
                finetune(train, dir.resolve("out"), "--max-steps", "1", "--batch-size", "2"),
                overlong + " and were cut to it (overlong examples: truncate)");

        String[] dropped =
                finetune(train, dir.resolve("out2"), "--max-steps", "1", "--overlong", "drop");
        assertLogged(dropped, overlong + " and were left out (overlong examples: drop)");
        assertLogged(dropped, "training 1 examples");

        Path onlyLong = data(dir, "long.jsonl", longExample);
        assertEquals(
                onlyLong
                        + ": all of its 1 examples are longer than --max-length 512, and --overlong"
                        + " drop left them out; raise --max-length or pass --overlong truncate",
                refused("finetune", finetune(onlyLong, dir.resolve("out3"), "--overlong", "drop")));
    }

    @Test
    void aMaxLengthPastTheContextIsAnErrorNamingBoth(@TempDir Path dir) throws Exception {
        Path train = data(dir, "train.jsonl", SHORT_EXAMPLE);
        Path out = dir.resolve("out");
        assertEquals(
                "--max-length 1024 is longer than the model's context: "
                        + CONTEXT
                        + "; use --max-length 512 or less",
                refused("finetune", finetune(train, out, "--max-length", "1024")));

        // a prefix takes positions too
        assertEquals(
                "--max-length 512 is longer than the model's context: "
                        + CONTEXT
                        + ", and the prefix's 16 virtual tokens take the first of them, leaving"
                        + " 496; use --max-length 496 or less",
                refused(
                        "finetune",
                        finetune(
                                train, out, "--method", "prefix", "--num-prefix-tokens", "16",
                                "--max-length", "512")));
        assertEquals(
                "--num-prefix-tokens 511 leaves no room for an example: "
                        + MODEL
                        + " has 512 positions (max_position_embeddings), and the prefix takes the"
                        + " first of them; use at most 510",
                refused(
                        "finetune",
                        finetune(train, out, "--method", "prefix", "--num-prefix-tokens", "511")));

        assertEquals(
                "--src-length 600 must be less than --max-length 512 (the default here: the"
                        + " model's context, "
                        + CONTEXT
                        + ")",
                refused("finetune", finetune(train, out, "--src-length", "600")));

        assertEquals(
                "--max-length 513 is longer than the model's context: "
                        + CONTEXT
                        + "; use --max-length 512 or less",
                refused(
                        "eval",
                        CliRunner.run(
                                "eval", "--model", MODEL, "--data", train.toString(),
                                "--max-length", "513")));
        assertFalse(Files.exists(out), "nothing trained");
    }

    @Test
    void evalCutsALongExampleAndSaysSo(@TempDir Path dir) throws Exception {
        Path data = data(dir, "dev.jsonl", SHORT_EXAMPLE, longExample);
        String[] result = CliRunner.run("eval", "--model", MODEL, "--data", data.toString());
        assertLogged(result, data + ": 1 of 2 examples are longer than the max length of 512");
        assertTrue(result[1].contains("loss "), result[1]);
    }

    @Test
    void bytesThatAreNotUtf8NameTheFileLineAndByteAndCanBeSkipped(@TempDir Path dir)
            throws Exception {
        Path train = dir.resolve("latin1.jsonl");
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        bytes.writeBytes((SHORT_EXAMPLE + "\n").getBytes(StandardCharsets.UTF_8));
        bytes.writeBytes("{\"src\": \"Tell me about the caf".getBytes(StandardCharsets.UTF_8));
        bytes.write(0xE9); // Latin-1, not UTF-8
        bytes.writeBytes("\", \"tgt\": \"It was nice.\"}\n".getBytes(StandardCharsets.UTF_8));
        Files.write(train, bytes.toByteArray());
        int offset = SHORT_EXAMPLE.length() + 1 + "{\"src\": \"Tell me about the caf".length();
        assertEquals(
                train
                        + ":2: not valid UTF-8 at byte 31 of the line (offset "
                        + offset
                        + " of the file): 0xE9; save the file as UTF-8 (pass --skip-malformed to"
                        + " skip such lines)",
                refused("finetune", finetune(train, dir.resolve("out"))));

        String[] skipped =
                finetune(train, dir.resolve("out"), "--max-steps", "1", "--skip-malformed");
        assertLogged(skipped, train + ": skipped 1 malformed lines of 2");
        assertLogged(skipped, "skipping " + train + ":2: not valid UTF-8 at byte 31");

        String[] eval = CliRunner.run("eval", "--model", MODEL, "--data", train.toString());
        assertTrue(refused("eval", eval).startsWith(train + ":2: not valid UTF-8"), eval[2]);
    }
}
