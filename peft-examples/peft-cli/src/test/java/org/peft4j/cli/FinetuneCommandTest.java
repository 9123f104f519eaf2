package org.peft4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.maxAbsDiff;

import ai.djl.ndarray.NDManager;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.PeftModel;
import org.peft4j.core.lm.CausalLMGenerator;
import org.peft4j.core.lm.GenerationConfig;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.llama.LlamaRounding;
import org.peft4j.models.tokenizer.LlamaTokenizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The fine-tuning commands end to end: the offline demo, and the stories260K "Mia" demo. */
class FinetuneCommandTest {

    @Test
    void theOfflineDemoTeachesANewTaskWithLoRA(@TempDir Path dir) throws Exception {
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
        // greedy decoding, merged by the command: the answer is sound to compare exactly where
        // every margin is clear of rounding, checked here on the unmerged model
        try (NDManager manager = NDManager.newBaseManager();
                LlamaTokenizer tokenizer = LlamaTokenizer.findNextTo(dir.resolve("base-model"))) {
            LlamaForCausalLM llama =
                    LlamaForCausalLM.fromPretrained(dir.resolve("base-model"), manager);
            PeftModel lora = PeftModel.fromPretrained(llama, dir.resolve("adapter"));
            int[] prompt = tokenizer.encode("upper: sQuArE >", true, false);
            int[] answer = greedy(lora, llama, prompt, 10, manager);
            assertEquals("upper: sQuArE > SQUARE", tokenizer.decode(answer).strip());
            LlamaRounding.assertClearGreedyPath(
                    lora, llama.getConfig(), answer, prompt.length, 0, manager, "the answer");
        }
    }

    private static int[] greedy(
            ai.djl.nn.Block model,
            LlamaForCausalLM llama,
            int[] prompt,
            int tokens,
            NDManager manager) {
        GenerationConfig config =
                GenerationConfig.builder()
                        .optMaxNewTokens(tokens)
                        .optEosTokenIds(llama.getConfig().getEosTokenIds())
                        .build();
        return new CausalLMGenerator(model, llama.getNumHiddenLayers())
                .generate(List.of(prompt), config, manager)
                .get(0);
    }

    @Test
    void storiesTeachStories260KToCallItsHeroineMiaAndTheMergedModelAgrees(@TempDir Path dir)
            throws Exception {
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
        // The command merges the adapter in memory; the checkpoint holds it merged by "merge":
        // both W + s B A, the products possibly summed in other orders. Greedy decoding gives the
        // same tokens where every margin exceeds twice what separates the checkpoint's logits
        // from the unmerged adapter's on this sequence (measured) plus rounding.
        try (NDManager manager = NDManager.newBaseManager();
                LlamaTokenizer tokenizer = LlamaTokenizer.findNextTo(merged)) {
            LlamaForCausalLM folded = LlamaForCausalLM.fromPretrained(merged, manager);
            int[] story = greedy(folded, folded, new int[] {1}, 60, manager);
            assertEquals(tokenizer.decode(story) + System.lineSeparator(), fromMerged[1]);
            PeftModel unmerged =
                    PeftModel.fromPretrained(
                            LlamaForCausalLM.fromPretrained(Path.of(model), manager), adapter);
            double moved =
                    maxAbsDiff(
                            LlamaRounding.logits(folded, story, manager),
                            LlamaRounding.logits(unmerged, story, manager));
            LlamaRounding.assertClearGreedyPath(
                    folded, folded.getConfig(), story, 1, moved, manager, "Mia's story");
        }
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
