package org.peft4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.lm.CausalLMGenerator;
import org.peft4j.core.lm.GenerationConfig;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.lora.LoRALinear;
import org.peft4j.lora.LoRAModel;

import java.nio.file.Path;
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
        assertTrue(
                result[1].startsWith("Once upon a time, there was a little girl named Lily."),
                result[1]);
    }

    @Test
    void aPromptIsPrintedWithItsContinuationAndSamplingIsSeeded() {
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
        assertEquals(first[1], again[1], "the same seed gives the same text");
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
            Engine.getInstance().setRandomSeed(3);
            for (LoRALinear layer : lora.getLoRALayers().values()) {
                layer.getLoraB()
                        .getArray()
                        .addi(
                                manager.randomNormal(
                                        0, 0.3f, layer.getLoraB().getShape(), DataType.FLOAT32));
            }
            lora.savePretrained(dir);
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
