package org.peft4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.models.chat.ChatMessage;
import org.peft4j.models.chat.ChatTemplate;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Chat fine-tuning from the command line, as the README runs it: {@code init} a small random model
 * with SmolLM2's tokenizer and ChatML template (the fixture has no weights), {@code template},
 * {@code finetune} on conversations, {@code eval}, {@code generate --chat}; and the options' and
 * data's errors.
 */
class ChatCommandsTest {

    private static final Pattern LOSS = Pattern.compile("loss (\\d+\\.\\d+)");

    /** The README's example data, in the repository's docs. */
    private static final Path EXAMPLES = Paths.get("../../docs/examples").toAbsolutePath();

    private static double loss(String[] result) {
        assertEquals("0", result[0], result[1] + result[2]);
        Matcher m = LOSS.matcher(result[1]);
        assertTrue(m.find(), result[1]);
        return Double.parseDouble(m.group(1));
    }

    private static Path init(Path dir) {
        Path base = dir.resolve("chat-base");
        String[] init =
                CliRunner.run(
                        "init",
                        "--config",
                        Fixtures.root().resolve("tokenizers/smollm2-135m-chatml").toString(),
                        "--num-hidden-layers",
                        "2",
                        "--hidden-size",
                        "64",
                        "--intermediate-size",
                        "128",
                        "--num-attention-heads",
                        "4",
                        "--num-key-value-heads",
                        "2",
                        "--initializer-range",
                        "0.5",
                        "--output",
                        base.toString());
        assertEquals("0", init[0], init[2]);
        return base;
    }

    @Test
    void theReadmesChatFineTuningLearnsTheAnswers(@TempDir Path dir) throws Exception {
        Path base = init(dir);
        assertTrue(Files.isRegularFile(base.resolve("tokenizer_config.json")), "template kept");
        Path data = EXAMPLES.resolve("capitals.jsonl");
        Path question = EXAMPLES.resolve("capitals-question.json");

        String[] template =
                CliRunner.run(
                        "template",
                        "--model",
                        base.toString(),
                        "--messages",
                        question.toString(),
                        "--add-generation-prompt");
        assertEquals("0", template[0], template[2]);
        // ChatML as SmolLM2's template writes it, read off the template by hand
        assertEquals(
                "<|im_start|>system\nAnswer with the capital city.<|im_end|>\n"
                        + "<|im_start|>user\nWhat is the capital of Japan?<|im_end|>\n"
                        + "<|im_start|>assistant\n",
                template[1]);

        double before =
                loss(CliRunner.run("eval", "--model", base.toString(), "--data", "" + data));
        Path adapter = dir.resolve("chat-lora");
        String[] tuned =
                CliRunner.run(
                        "finetune",
                        "--model",
                        base.toString(),
                        "--train",
                        data.toString(),
                        "--output",
                        adapter.toString(),
                        "--learning-rate",
                        "2e-2",
                        "--max-steps",
                        "100",
                        "--epochs",
                        "0",
                        "--batch-size",
                        "8");
        assertEquals("0", tuned[0], tuned[2]);
        double after =
                loss(
                        CliRunner.run(
                                "eval",
                                "--model",
                                base.toString(),
                                "--adapter",
                                adapter.toString(),
                                "--data",
                                data.toString()));
        System.out.printf("CHAT capitals: eval loss %.4f before, %.4f after%n", before, after);
        // 100 Adam steps from one seed end where float rounding takes them, and MKL rounds
        // differently across CPUs (0.8776 after 17.3901 on one Xeon: 5.0 %); a tenth of the
        // loss is learning, the reply below is what the README promises
        assertTrue(after < 0.1 * before, after + " after, " + before + " before");

        String[] reply =
                CliRunner.run(
                        "generate",
                        "--model",
                        base.toString(),
                        "--adapter",
                        adapter.toString(),
                        "--chat",
                        "--system",
                        "Answer with the capital city.",
                        "--prompt",
                        "What is the capital of Japan?",
                        "--max-new-tokens",
                        "8");
        assertEquals("0", reply[0], reply[2]);
        // only the reply, ended by <|im_end|> (an EOS id of the tokenizer's files)
        assertEquals("Tokyo.", reply[1].strip());

        // the template the model's files hold renders what generate --chat sent
        String rendered =
                ChatTemplate.fromPretrained(base)
                        .render(
                                List.of(
                                        ChatMessage.system("Answer with the capital city."),
                                        ChatMessage.user("What is the capital of Japan?")),
                                true);
        assertEquals(template[1], rendered);
    }

    @Test
    void badChatInputEndsInOneLineNamingIt(@TempDir Path dir) throws Exception {
        String[] system =
                CliRunner.run(
                        "generate", "--model", "x", "--system", "Be brief.", "--prompt", "Hi");
        assertEquals("2", system[0]);
        assertTrue(system[2].contains("--system needs --chat"), system[2]);

        Path base = init(dir);
        Path bad = dir.resolve("bad.jsonl");
        Files.writeString(
                bad,
                "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"},"
                        + " {\"role\": \"assistant\", \"content\": \"Hello\"}]}\n"
                        + "{\"conversations\": [{\"from\": \"robot\", \"value\": \"Hi\"}]}\n");
        String[] eval = CliRunner.run("eval", "--model", base.toString(), "--data", "" + bad);
        assertEquals("1", eval[0]);
        assertTrue(eval[2].contains(bad + ":2: conversations[0]: unknown from \"robot\""), eval[2]);

        Path unanswered = dir.resolve("unanswered.jsonl");
        Files.writeString(
                unanswered, "{\"messages\": [{\"role\": \"user\", \"content\": \"Anyone?\"}]}\n");
        String[] none =
                CliRunner.run("eval", "--model", base.toString(), "--data", "" + unanswered);
        assertEquals("1", none[0]);
        assertTrue(none[2].contains("has anything to learn"), none[2]);
        assertTrue(none[2].contains("--train-on-all"), none[2]);
        // with --train-on-all the user's turn is learned too
        loss(
                CliRunner.run(
                        "eval",
                        "--model",
                        base.toString(),
                        "--data",
                        unanswered.toString(),
                        "--train-on-all"));

        Files.delete(base.resolve("tokenizer_config.json"));
        String[] noTemplate =
                CliRunner.run(
                        "generate", "--model", base.toString(), "--chat", "--prompt", "Hi");
        assertEquals("1", noTemplate[0]);
        assertTrue(noTemplate[2].contains(base.toString()), noTemplate[2]);
    }
}
