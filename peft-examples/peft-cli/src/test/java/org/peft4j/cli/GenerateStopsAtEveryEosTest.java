package org.peft4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.lm.CausalLMGenerator;
import org.peft4j.core.lm.GenerationConfig;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.models.tokenizer.StoriesTokenizerJson;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * {@code generate} stops at every EOS id of the tokenizer's {@code generation_config.json}, not
 * only at the model config's (stories260K's config.json has {@code "eos_token_id": 2}).
 */
class GenerateStopsAtEveryEosTest {

    /** Tokens the model generates greedily from BOS, BOS first (the anchor story). */
    static int[] greedyStory(Path model, int maxNewTokens) throws Exception {
        try (NDManager manager = NDManager.newBaseManager()) {
            LlamaForCausalLM llama = LlamaForCausalLM.fromPretrained(model, manager);
            GenerationConfig config =
                    GenerationConfig.builder()
                            .optMaxNewTokens(maxNewTokens)
                            .optEosTokenIds(2)
                            .build();
            return new CausalLMGenerator(llama)
                    .generate(List.of(new int[] {1}), config, manager)
                    .get(0);
        }
    }

    @Test
    void stopsAtTheThirdEosIdOfGenerationConfig(@TempDir Path dir) throws Exception {
        Path model = Fixtures.stories260K();
        int[] story = greedyStory(model, 40);
        int stop = story[4]; // the 4th generated token becomes an EOS id
        for (int i = 1; i < 4; i++) {
            assertTrue(story[i] != stop && story[i] != 3, "the story reaches it only at 4");
        }
        Path tokenizer = StoriesTokenizerJson.write(dir, model.resolve("tokenizer.bin"));
        // the third of the list, as <|eot_id|> is Llama 3.2 Instruct's; 3 is never generated
        Files.writeString(
                dir.resolve("generation_config.json"),
                "{\"bos_token_id\": 1, \"eos_token_id\": [2, 3, " + stop + "]}");
        Files.writeString(
                dir.resolve("tokenizer_config.json"),
                "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_bos_token\": true}");

        String[] result =
                CliRunner.run(
                        "generate",
                        "--model",
                        model.toString(),
                        "--tokenizer",
                        tokenizer.toString(),
                        "--max-new-tokens",
                        "40");
        assertEquals("0", result[0], result[2]);
        try (LlamaTokenizer bin = LlamaTokenizer.findNextTo(model)) {
            String upToStop = bin.decode(Arrays.copyOf(story, 4)); // "Once upon a" or so
            String whole = bin.decode(story);
            assertTrue(whole.length() > upToStop.length() + 20, whole);
            // without the stop the 40 tokens of the whole story would be printed
            assertEquals(upToStop.strip(), result[1].strip(), "stopped at " + stop);
        }
    }
}
