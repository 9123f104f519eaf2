package org.peft4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.peft4j.core.testing.Fixtures;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Every option with a range or a choice, out of it: a usage error (exit status 2) before anything
 * loads, whose first line names the option as typed and the range, never a Java field name
 * ({@code maxNewTokens}) or class ({@code Schedule.Kind}), and no stack trace. The paths do not
 * exist: nothing is read.
 */
class OptionRangesTest {

    /** A Java field name: a lower-case word followed by an upper-case letter. */
    private static final Pattern JAVA_NAME = Pattern.compile("\\b[a-z]+[A-Z][A-Za-z]*\\b");

    private static final String[] FINETUNE = {
        "finetune", "--model", "/no/such/model", "--train", "/no/such.jsonl"
    };
    private static final String[] GENERATE = {"generate", "--model", "/no/such/model"};
    private static final String[] EVAL = {
        "eval", "--model", "/no/such/model", "--data", "/no/such.jsonl"
    };
    private static final String[] STORIES = {
        "stories", "--model", "/no/such/model", "--output", "/no/such/out.jsonl"
    };
    private static final String[] BENCH = {"bench", "--config", "tiny", "--mode", "gemm"};

    /** {command prefix, option, bad value, what the message says the range is}. */
    private static final Object[][] CASES = {
        {GENERATE, "--max-new-tokens", "-1", "must be an integer >= 0, got \"-1\""},
        {GENERATE, "--max-new-tokens", "lots", "must be an integer >= 0, got \"lots\""},
        {GENERATE, "--temperature", "-0.5", "must be a number >= 0, got \"-0.5\""},
        {GENERATE, "--temperature", "NaN", "must be a number >= 0, got \"NaN\""},
        {GENERATE, "--temperature", "Infinity", "must be a number >= 0, got \"Infinity\""},
        {GENERATE, "--top-k", "-1", "must be an integer >= 0, got \"-1\""},
        {GENERATE, "--top-p", "0", "must be a number in (0, 1], got \"0\""},
        {GENERATE, "--top-p", "1.5", "must be a number in (0, 1], got \"1.5\""},
        {GENERATE, "--truncate-prompt", "right", "must be none or left, got \"right\""},
        {FINETUNE, "--lora-rank", "0", "must be an integer >= 1, got \"0\""},
        {FINETUNE, "--lora-alpha", "0", "must be a number > 0, got \"0\""},
        {FINETUNE, "--lora-dropout", "1", "must be a number in [0, 1), got \"1\""},
        {FINETUNE, "--num-prefix-tokens", "0", "must be an integer >= 1, got \"0\""},
        {FINETUNE, "--prefix-projection-hidden-size", "0", "must be an integer >= 1, got \"0\""},
        {FINETUNE, "--learning-rate", "-1e-4", "must be a number > 0, got \"-1e-4\""},
        {FINETUNE, "--epochs", "-1", "must be an integer >= 0, got \"-1\""},
        {FINETUNE, "--max-steps", "-1", "must be an integer >= 0, got \"-1\""},
        {FINETUNE, "--batch-size", "0", "must be an integer >= 1, got \"0\""},
        {FINETUNE, "--gradient-accumulation-steps", "0", "must be an integer >= 1, got \"0\""},
        {FINETUNE, "--src-length", "0", "must be an integer >= 1, got \"0\""},
        {FINETUNE, "--max-length", "1", "must be an integer >= 2, got \"1\""},
        {FINETUNE, "--overlong", "keep", "must be truncate or drop, got \"keep\""},
        {FINETUNE, "--warmup-steps", "-1", "must be an integer >= 0, got \"-1\""},
        {FINETUNE, "--lr-scheduler", "step", "must be constant, linear or cosine, got \"step\""},
        {FINETUNE, "--max-grad-norm", "-1", "must be a number >= 0, got \"-1\""},
        {FINETUNE, "--weight-decay", "-0.1", "must be a number >= 0, got \"-0.1\""},
        {FINETUNE, "--eval-steps", "-1", "must be an integer >= 0, got \"-1\""},
        {FINETUNE, "--save-steps", "-5", "must be an integer >= 0, got \"-5\""},
        {FINETUNE, "--logging-steps", "0", "must be an integer >= 1, got \"0\""},
        {FINETUNE, "--tensor-parallel-degree", "0", "must be an integer >= 1, got \"0\""},
        {FINETUNE, "--tensor-parallel-degree", "-2", "must be an integer >= 1, got \"-2\""},
        {EVAL, "--batch-size", "0", "must be an integer >= 1, got \"0\""},
        {EVAL, "--max-length", "0", "must be an integer >= 2, got \"0\""},
        {EVAL, "--src-length", "-3", "must be an integer >= 1, got \"-3\""},
        {EVAL, "--overlong", "TRUNCATE!", "must be truncate or drop, got \"TRUNCATE!\""},
        {STORIES, "--samples", "0", "must be an integer >= 1, got \"0\""},
        {STORIES, "--max-new-tokens", "0", "must be an integer >= 1, got \"0\""},
        {STORIES, "--temperature", "-1", "must be a number >= 0, got \"-1\""},
        {BENCH, "--timed-steps", "4", "must be an integer >= 5, got \"4\""},
        {BENCH, "--warmup-steps", "-1", "must be an integer >= 0, got \"-1\""},
        {BENCH, "--steps", "-1", "must be an integer >= 0, got \"-1\""},
    };

    @Test
    void aValueOutOfRangeIsAUsageErrorNamingTheOptionAsTyped() {
        List<String> bad = new ArrayList<>();
        for (Object[] c : CASES) {
            List<String> args = new ArrayList<>(List.of((String[]) c[0]));
            args.add((String) c[1]);
            args.add((String) c[2]);
            String where = String.join(" ", args) + ": ";
            String[] result = CliRunner.run(args.toArray(String[]::new));
            String first = result[2].lines().findFirst().orElse("");
            String expected = "Invalid value for option '" + c[1] + "': " + c[3];
            if (!"2".equals(result[0]) || !expected.equals(first)) {
                bad.add(where + "exit " + result[0] + ", first line: " + first);
            }
            if (JAVA_NAME.matcher(first).find()) {
                bad.add(where + "a Java name in: " + first);
            }
            if (result[2].contains("\tat ") || !result[1].isEmpty()) {
                bad.add(where + "a stack trace or output: " + result[2] + result[1]);
            }
        }
        assertTrue(bad.isEmpty(), String.join("\n", bad));
    }

    @Test
    void epochsAndMaxStepsBothZeroIsAUsageErrorNamingThem() {
        List<String> args = new ArrayList<>(List.of(FINETUNE));
        args.addAll(List.of("--epochs", "0"));
        String[] result = CliRunner.run(args.toArray(String[]::new));
        assertEquals("2", result[0], result[2]);
        assertEquals(
                "--epochs 0 needs --max-steps above 0: set one of them",
                result[2].lines().findFirst().orElse(""));
    }

    @Test
    void theEdgesOfTheRangesAreAccepted() {
        // the edges of the ranges are accepted: greedy, top-p 1, top-k 0, no new tokens
        String model = Fixtures.stories260K().toString();
        String[] result =
                CliRunner.run(
                        "generate", "--model", model, "--max-new-tokens", "0", "--temperature",
                        "0", "--top-k", "0", "--top-p", "1", "--truncate-prompt", "none");
        assertEquals("0", result[0], result[2]);
    }
}
