package org.peft4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.testing.Fixtures;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The fine-tuning commands end to end: the offline demo, and the stories260K "Mia" demo. */
class FinetuneCommandTest {

    @Test
    void theOfflineDemoTeachesANewTaskWithLoRA(@TempDir Path dir) {
        String[] result = CliRunner.run("finetune", "--output", dir.toString());
        assertEquals("0", result[0], result[1] + result[2]);
        Matcher m =
                Pattern.compile("upper exact match: (\\d+)% before LoRA, (\\d+)% after")
                        .matcher(result[1]);
        assertTrue(m.find(), result[1]);
        assertTrue(Integer.parseInt(m.group(1)) <= 10, "before: " + m.group(1));
        assertTrue(Integer.parseInt(m.group(2)) >= 90, "after: " + m.group(2));
        assertTrue(Files.isRegularFile(dir.resolve("adapter/loss.svg")));
        assertTrue(Files.isRegularFile(dir.resolve("adapter/metrics.csv")));

        String[] adapted =
                CliRunner.run(
                        "generate",
                        "--model",
                        dir.resolve("base-model").toString(),
                        "--adapter",
                        dir.resolve("adapter").toString(),
                        "--prompt",
                        "upper: sQuArE >",
                        "--max-new-tokens",
                        "10");
        assertEquals("0", adapted[0], adapted[2]);
        assertEquals("upper: sQuArE > SQUARE", adapted[1].strip());
    }

    @Test
    void storiesTeachStories260KToCallItsHeroineMiaAndTheMergedModelAgrees(@TempDir Path dir) {
        String model = Fixtures.stories260K().toString();
        Path data = dir.resolve("mia.jsonl");
        String[] stories =
                CliRunner.run(
                        "stories",
                        "--model",
                        model,
                        "--samples",
                        "96",
                        "--replace",
                        "Lily=Mia",
                        "--output",
                        data.toString());
        assertEquals("0", stories[0], stories[2]);

        Path adapter = dir.resolve("mia-lora");
        String[] tuned =
                CliRunner.run(
                        "finetune",
                        "--model",
                        model,
                        "--train",
                        data.toString(),
                        "--dev",
                        data.toString(),
                        "--output",
                        adapter.toString(),
                        "--learning-rate",
                        "1e-2",
                        "--epochs",
                        "3",
                        "--batch-size",
                        "8",
                        "--src-length",
                        "8",
                        "--max-length",
                        "256");
        assertEquals("0", tuned[0], tuned[2]);

        String[] base = CliRunner.run("generate", "--model", model, "--max-new-tokens", "60");
        String[] withAdapter =
                CliRunner.run(
                        "generate",
                        "--model",
                        model,
                        "--adapter",
                        adapter.toString(),
                        "--max-new-tokens",
                        "60");
        assertTrue(base[1].contains("a little girl named Lily"), base[1]);
        assertTrue(withAdapter[1].contains("a little girl named Mia"), withAdapter[1]);

        Path merged = dir.resolve("mia-merged");
        String[] merge =
                CliRunner.run(
                        "merge",
                        "--model",
                        model,
                        "--adapter",
                        adapter.toString(),
                        "--output",
                        merged.toString());
        assertEquals("0", merge[0], merge[2]);
        assertTrue(Files.isRegularFile(merged.resolve("config.json")));
        assertTrue(Files.isRegularFile(merged.resolve("tokenizer.bin")));
        String[] fromMerged =
                CliRunner.run("generate", "--model", merged.toString(), "--max-new-tokens", "60");
        assertEquals(
                withAdapter[1], fromMerged[1], "the merged checkpoint generates the same tokens");

        String[] before = CliRunner.run("eval", "--model", model, "--data", data.toString());
        String[] after =
                CliRunner.run(
                        "eval",
                        "--model",
                        model,
                        "--adapter",
                        adapter.toString(),
                        "--data",
                        data.toString());
        assertTrue(loss(after[1]) < loss(before[1]), before[1] + " / " + after[1]);
    }

    private static double loss(String line) {
        Matcher m = Pattern.compile("loss ([0-9.]+)").matcher(line);
        assertTrue(m.find(), line);
        return Double.parseDouble(m.group(1));
    }

    @Test
    void badInputEndsInAMessageNamingIt(@TempDir Path dir) throws Exception {
        Path data = dir.resolve("bad.jsonl");
        Files.writeString(data, "{\"src\": \"a\", \"tgt\": \"b\"}\n{\"src\": 1, \"tgt\": \"b\"}\n");
        String model = Fixtures.stories260K().toString();
        String[] result =
                CliRunner.run(
                        "finetune",
                        "--model",
                        model,
                        "--train",
                        data.toString(),
                        "--output",
                        dir.resolve("o").toString());
        assertEquals("1", result[0]);
        assertTrue(result[2].contains(data + ":2:"), result[2]);

        String[] method =
                CliRunner.run(
                        "finetune",
                        "--model",
                        model,
                        "--train",
                        dir.resolve("x").toString(),
                        "--method",
                        "ia3");
        assertEquals("1", method[0]);
        assertTrue(method[2].contains("--method must be lora or prefix, got \"ia3\""), method[2]);
    }
}
