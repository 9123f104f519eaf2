package org.peft4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.maxAbsDiff;

import ai.djl.ndarray.NDManager;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.lm.CausalLMGenerator;
import org.peft4j.core.lm.GenerationConfig;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.core.testing.SamplingMargins;
import org.peft4j.models.llama.LlamaRounding;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.lora.LoRAModel;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

class GenerateCommandTest {

    static String[] run(String... args) {
        return CliRunner.run(args);
    }

    @Test
    void greedyGenerationPrintsTheAnchorStory() {
        String model = Fixtures.stories260K().toString();
        String[] result = run("generate", "--model", model, "--max-new-tokens", "40");
        assertEquals("0", result[0], result[2]);
        // greedy decoding: LlamaFixtureTest checks that its margins along the anchor story are
        // clear of rounding, so the same text on any CPU
        assertTrue(
                result[1].startsWith("Once upon a time, there was a little girl named Lily."),
                result[1]);
    }

    @Test
    void aPromptIsPrintedWithItsContinuationAndSamplingIsSeeded() throws Exception {
        String model = Fixtures.stories260K().resolve("stories260K.bin").toString();
        String[] first =
                run(
                        "generate",
                        "--model",
                        model,
                        "--prompt",
                        "Tom had a dog",
                        "--temperature",
                        "0.9",
                        "--top-k",
                        "40",
                        "--top-p",
                        "0.9",
                        "--seed",
                        "7",
                        "--max-new-tokens",
                        "30");
        String[] again =
                run(
                        "generate",
                        "--model",
                        model,
                        "--prompt",
                        "Tom had a dog",
                        "--temperature",
                        "0.9",
                        "--top-k",
                        "40",
                        "--top-p",
                        "0.9",
                        "--seed",
                        "7",
                        "--max-new-tokens",
                        "30");
        assertEquals("0", first[0], first[2]);
        assertTrue(first[1].startsWith("Tom had a dog"), first[1]);
        assertTrue(first[1].length() > "Tom had a dog".length() + 20, first[1]);
        // The same seed draws the same numbers, but the two runs' logits are not bitwise the
        // same (MKL's path depends on the buffers): they sample the same tokens as long as every
        // draw is clear of rounding. Replaying the sampler on one full pass's logits says how far
        // that holds; both runs must give that text, and the whole of it where all steps are clear.
        Path file = Path.of(model);
        try (NDManager manager = NDManager.newBaseManager();
                LlamaTokenizer tokenizer = LlamaTokenizer.findNextTo(file)) {
            LlamaForCausalLM llama = LlamaForCausalLM.fromPretrained(file, manager);
            int[] prompt = tokenizer.encode("Tom had a dog", true, false);
            GenerationConfig config =
                    GenerationConfig.builder()
                            .optMaxNewTokens(30)
                            .optTemperature(0.9f)
                            .optTopK(40)
                            .optTopP(0.9f)
                            .optSeed(7)
                            .optEosTokenIds(llama.getConfig().getEosTokenIds())
                            .build();
            int[] tokens =
                    new CausalLMGenerator(llama).generate(List.of(prompt), config, manager).get(0);
            float[] logits = LlamaRounding.logits(llama, tokens, manager);
            int clear =
                    SamplingMargins.firstUnclearStep(
                            logits,
                            llama.getVocabSize(),
                            tokens,
                            prompt.length,
                            config,
                            LlamaRounding.tolerance(llama.getConfig(), tokens.length, logits),
                            "seeded sampling");
            String sure = tokenizer.decode(Arrays.copyOf(tokens, clear));
            assertTrue(first[1].startsWith(sure), sure + " / " + first[1]);
            assertTrue(again[1].startsWith(sure), sure + " / " + again[1]);
            if (clear == tokens.length) {
                assertEquals(first[1], again[1], "the same seed gives the same text");
                assertEquals(sure + System.lineSeparator(), first[1]);
            }
        }
    }

    @Test
    void aLoraAdapterChangesTheOutputAsTheJavaApiDoes(@TempDir Path dir) throws Exception {
        Path model = Fixtures.stories260K();
        int[] expected;
        try (NDManager manager = NDManager.newBaseManager();
                LlamaTokenizer tokenizer = LlamaTokenizer.findNextTo(model)) {
            LlamaForCausalLM llama = LlamaForCausalLM.fromPretrained(model, manager);
            LoRAModel lora =
                    new LoRAModel(
                            llama,
                            LoRAConfig.builder()
                                    .setTargetModules("q_proj", "v_proj", "down_proj")
                                    .optR(4)
                                    .optLoraAlpha(8)
                                    .build());
            TestAdapters.perturbB(lora, manager, 3, 0.3f).savePretrained(dir);
            expected =
                    new CausalLMGenerator(lora, llama.getNumHiddenLayers())
                            .generate(
                                    List.of(new int[] {1}),
                                    GenerationConfig.builder()
                                            .optMaxNewTokens(40)
                                            .optEosTokenIds(2)
                                            .build(),
                                    manager)
                            .get(0);
            // The command merges the adapter (W + s B A, rounded) where this ran it unmerged: the
            // same tokens where every greedy margin exceeds twice what merging moved the logits on
            // this sequence (measured) plus their rounding
            float[] unmerged = LlamaRounding.logits(lora, expected, manager);
            lora.merge(true);
            double moved = maxAbsDiff(unmerged, LlamaRounding.logits(lora, expected, manager));
            LlamaRounding.assertClearGreedyPath(
                    lora, llama.getConfig(), expected, 1, moved, manager, "the adapted story");
            String text = tokenizer.decode(expected);
            String[] result =
                    run(
                            "generate",
                            "--model",
                            model.toString(),
                            "--adapter",
                            dir.toString(),
                            "--max-new-tokens",
                            "40");
            assertEquals("0", result[0], result[2]);
            assertEquals(text + System.lineSeparator(), result[1]); // the text, then a line end
            assertTrue(
                    !text.startsWith("Once upon a time, there was a little girl named Lily."),
                    text);
        }
    }

    @Test
    void aMissingModelEndsInAMessageNotAStackTrace() {
        String[] result = run("generate", "--model", "/no/such/model");
        assertEquals("1", result[0]);
        assertTrue(result[2].contains("/no/such/model"), result[2]);
        assertTrue(!result[2].contains("\tat "), "no stack trace: " + result[2]);
    }
}
