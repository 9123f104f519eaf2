package org.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDManager;

import org.junit.jupiter.api.Test;
import org.peft4j.core.lm.CausalLMGenerator;
import org.peft4j.core.lm.GenerationConfig;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.models.tokenizer.SpecialTokens;
import org.peft4j.models.tokenizer.WithSpecialTokens;
import org.peft4j.train.data.Example;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/** {@link ExactMatch} ends a continuation at any of the tokenizer's EOS ids, not only the first. */
class ExactMatchTest {

    @Test
    void aContinuationEndingAtTheThirdEosIdMatches() throws Exception {
        Path model = Fixtures.stories260K();
        try (NDManager manager = NDManager.newBaseManager();
                LlamaTokenizer bin = LlamaTokenizer.findNextTo(model)) {
            LlamaForCausalLM llama = LlamaForCausalLM.fromPretrained(model, manager);
            GenerationConfig greedy =
                    GenerationConfig.builder().optMaxNewTokens(8).optEosTokenIds(2).build();
            int[] story =
                    new CausalLMGenerator(llama)
                            .generate(List.of(new int[] {1}), greedy, manager)
                            .get(0);
            // the target is the story's first three tokens ("Once upon a"); its fourth ends it
            int[] target = Arrays.copyOfRange(story, 1, 4);
            String text = bin.decode(Arrays.copyOf(story, 4));
            assertArrayEquals(target, bin.encode(text, false, false), "the target round-trips");
            SpecialTokens special =
                    SpecialTokens.builder()
                            .optBosId(1)
                            .setEosIds(2, 3, story[4])
                            .optAddBos(true)
                            .build();
            LlamaTokenizer tokenizer = new WithSpecialTokens(bin, special);
            List<Example> examples = List.of(Example.of("", text));
            // the continuation matches only if it counts as ended at story[4], the third EOS id
            assertEquals(
                    1.0,
                    ExactMatch.measure(
                            llama, llama.getNumHiddenLayers(), tokenizer, examples, 1, manager));
        }
    }
}
