package org.peft4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;

import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.peft4j.cli.demo.CharVocabulary;
import org.peft4j.core.io.NativeArrays;
import org.peft4j.core.tree.BlockPaths;
import org.peft4j.models.llama.LlamaConfig;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.llama.ModelFamily;
import org.peft4j.models.llama.weights.LlamaCheckpoints;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Every family from the command line: LoRA and prefix tuning with {@code finetune}, {@code eval}
 * of the result against the base model, {@code generate} with the adapter and {@code merge}, on a
 * small random checkpoint of each family with the demo's character tokenizer.
 */
class ModelFamiliesCommandTest {

    private static final Pattern LOSS = Pattern.compile("loss (\\d+\\.\\d+)");

    /**
     * A checkpoint of the family: Qwen3 with head_dim 12, Mistral with a window of 24, which keeps
     * the prefix in view of the answer (a shorter window cuts it out, as it should, and leaves
     * prefix tuning nothing to learn with).
     */
    private static Path checkpoint(ModelFamily family, Path dir) throws IOException {
        LlamaConfig.Builder b =
                LlamaConfig.builder()
                        .setSizes(32, 64, 2, 4, 2, CharVocabulary.size())
                        .optMaxPositionEmbeddings(64)
                        .optModelFamily(family);
        if (family == ModelFamily.QWEN3) {
            b.optHeadDim(12);
        } else if (family == ModelFamily.MISTRAL) {
            b.optSlidingWindow(24);
        }
        Path model = dir.resolve("model");
        try (NDManager manager = NDManager.newBaseManager()) {
            LlamaForCausalLM llama = LlamaForCausalLM.random(b.build(), manager, 5);
            // N(0, 0.02) embeddings behind a unit-RMS hidden state cap the logits near 0.6 and
            // the loss near ln(V), whatever an adapter does: N(0, 1) lets training show
            for (Map.Entry<String, Parameter> p : BlockPaths.parameters(llama).entrySet()) {
                if (p.getKey().endsWith("embed_tokens.weight")
                        || p.getKey().equals("lm_head.weight")) {
                    NDArray weight = p.getValue().getArray();
                    NativeArrays.copyInto(weight, weight.mul(50));
                } else if (p.getKey().endsWith(".bias")) {
                    // biases start at zero: drawn ones make Qwen2's count
                    NDArray bias = p.getValue().getArray();
                    NDArray drawn =
                            manager.randomNormal(0, 0.1f, bias.getShape(), bias.getDataType());
                    NativeArrays.copyInto(bias, drawn);
                }
            }
            LlamaCheckpoints.save(llama, model);
        }
        CharVocabulary.write(model.resolve("tokenizer.bin"));
        return model;
    }

    /** A task a random tiny model learns in a few steps: answer every word with "ok". */
    private static Path data(Path dir) throws IOException {
        List<String> lines = new ArrayList<>();
        String[] words = {"abc", "dog", "sun", "cat", "tree", "blue", "fox", "moon"};
        for (String word : words) {
            lines.add("{\"src\": \"say: " + word + " >\", \"tgt\": \" ok\"}");
        }
        Path file = dir.resolve("ok.jsonl");
        Files.write(file, lines);
        return file;
    }

    private static double loss(String[] result) {
        assertEquals("0", result[0], result[1] + result[2]);
        Matcher m = LOSS.matcher(result[1]);
        assertTrue(m.find(), result[1]);
        return Double.parseDouble(m.group(1));
    }

    private static String[] finetune(Path model, Path data, Path out, String method) {
        return CliRunner.run(
                "finetune",
                "--method",
                method,
                "--model",
                model.toString(),
                "--train",
                data.toString(),
                "--output",
                out.toString(),
                "--learning-rate",
                method.equals("prefix") ? "2e-1" : "5e-2",
                "--max-steps",
                "80",
                "--epochs",
                "0",
                "--batch-size",
                "4",
                "--num-prefix-tokens",
                "8");
    }

    @ParameterizedTest
    @EnumSource(ModelFamily.class)
    void eachFamilyFineTunesEvaluatesGeneratesAndMerges(ModelFamily family, @TempDir Path dir)
            throws Exception {
        Path model = checkpoint(family, dir);
        Path data = data(dir);
        double base = loss(CliRunner.run("eval", "--model", model.toString(), "--data", data + ""));
        for (String method : new String[] {"lora", "prefix"}) {
            Path adapter = dir.resolve(method);
            String[] tuned = finetune(model, data, adapter, method);
            assertEquals("0", tuned[0], tuned[1] + tuned[2]);
            double after =
                    loss(
                            CliRunner.run(
                                    "eval",
                                    "--model",
                                    model.toString(),
                                    "--adapter",
                                    adapter.toString(),
                                    "--data",
                                    data.toString()));
            assertTrue(
                    after < 0.3 * base,
                    String.format(
                            Locale.ROOT,
                            "%s %s: eval loss %.4f after training, %.4f before",
                            family,
                            method,
                            after,
                            base));
            System.out.printf(
                    Locale.ROOT, "FAMILY %s %s: eval loss %.4f before, %.4f after%n",
                    family, method, base, after);
            String[] generated =
                    CliRunner.run(
                            "generate",
                            "--model",
                            model.toString(),
                            "--adapter",
                            adapter.toString(),
                            "--prompt",
                            "say: dog >",
                            "--max-new-tokens",
                            "4");
            assertEquals("0", generated[0], generated[2]);
            assertTrue(generated[1].startsWith("say: dog >"), generated[1]);
        }
        Path merged = dir.resolve("merged");
        String[] merge =
                CliRunner.run(
                        "merge",
                        "--model",
                        model.toString(),
                        "--adapter",
                        dir.resolve("lora").toString(),
                        "--output",
                        merged.toString());
        assertEquals("0", merge[0], merge[2]);
        String type =
                new ObjectMapper()
                        .readTree(merged.resolve("config.json").toFile())
                        .get("model_type")
                        .textValue();
        assertEquals(family.getModelType(), type, "the merged checkpoint keeps its family");
        double mergedLoss =
                loss(CliRunner.run("eval", "--model", merged.toString(), "--data", data + ""));
        assertTrue(mergedLoss < 0.3 * base, family + ": merged " + mergedLoss + " vs " + base);
    }
}
