package org.peft4j.train;

import ai.djl.ndarray.NDManager;
import ai.djl.nn.Block;

import org.peft4j.core.lm.CausalLMGenerator;
import org.peft4j.core.lm.GenerationConfig;
import org.peft4j.train.data.Example;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.models.tokenizer.SpecialTokens;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The fraction of examples whose greedy continuation of the source (up to any of the tokenizer's
 * EOS ids) is exactly the target.
 */
public final class ExactMatch {

    private ExactMatch() {}

    /**
     * Measures exact-match accuracy.
     *
     * @param model the model (base or adapted)
     * @param layers the model's decoder layers
     * @param tokenizer the tokenizer
     * @param examples single-round examples
     * @param batchSize prompts generated together
     * @param manager the manager for temporary arrays
     * @return the fraction in [0, 1]
     */
    public static double measure(
            Block model,
            int layers,
            LlamaTokenizer tokenizer,
            List<Example> examples,
            int batchSize,
            NDManager manager) {
        CausalLMGenerator generator = new CausalLMGenerator(model, layers);
        SpecialTokens special = tokenizer.getSpecialTokens();
        int correct = 0;
        for (int from = 0; from < examples.size(); from += batchSize) {
            List<Example> batch =
                    examples.subList(from, Math.min(from + batchSize, examples.size()));
            List<int[]> prompts = new ArrayList<>();
            int longest = 0;
            for (Example example : batch) {
                if (example.isConversation()) {
                    throw new IllegalArgumentException(
                            example.where()
                                    + "exact match compares a src/tgt example's answer; a"
                                    + " conversation has none to compare");
                }
                prompts.add(tokenizer.encodeStart(example.sources().get(0)));
                longest =
                        Math.max(
                                longest,
                                tokenizer.encode(example.targets().get(0), false, false).length);
            }
            // every EOS id stops (Llama 3 Instruct ends a turn with <|eot_id|>, not the first)
            GenerationConfig config =
                    special.configure(GenerationConfig.builder().optMaxNewTokens(longest + 2))
                            .build();
            List<int[]> outputs = generator.generate(prompts, config, manager);
            for (int i = 0; i < batch.size(); i++) {
                int[] expected = tokenizer.encode(batch.get(i).targets().get(0), false, false);
                int[] output = outputs.get(i);
                int start = prompts.get(i).length;
                int end = output.length;
                if (end > start && special.isEos(output[end - 1])) {
                    end--;
                    correct +=
                            Arrays.equals(expected, Arrays.copyOfRange(output, start, end)) ? 1 : 0;
                }
            }
        }
        return (double) correct / examples.size();
    }
}
