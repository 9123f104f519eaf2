package org.peft4j.models.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertRoundingClose;

import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.inference.Predictor;
import ai.djl.modality.nlp.generate.CausalLMOutput;
import ai.djl.modality.nlp.generate.SearchConfig;
import ai.djl.modality.nlp.generate.TextGenerator;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.Trainer;
import ai.djl.training.loss.L2Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.PeftModel;
import org.peft4j.core.lm.CausalLMGenerator;
import org.peft4j.core.lm.CausalLMTranslator;
import org.peft4j.core.lm.GenerationConfig;
import org.peft4j.core.lm.TokenCrossEntropy;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.core.tree.BlockPaths;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.prefix.PrefixConfig;
import org.peft4j.prefix.PrefixModelForCausalLM;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Prefix tuning on the real stories260K Llama. */
class LlamaPrefixTest {

    /** The seed of the drawn prefixes whose greedy paths the tests compare. */
    private static final int PREFIX_SEED = 1;

    private static NDManager manager;

    @BeforeAll
    static void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    private static LlamaForCausalLM llama() throws Exception {
        return LlamaForCausalLM.fromPretrained(Fixtures.stories260K(), manager);
    }

    private static NDArray ids(int[] tokens) {
        return manager.create(Arrays.stream(tokens).asLongStream().toArray()).reshape(1, -1);
    }

    private static NDList run(ai.djl.nn.Block block, NDList input) {
        return block.forward(new ParameterStore(manager, false), input, false);
    }

    @Test
    void aPrefixHoldingTheCacheOfAContextActsAsThatContextInLlama() throws Exception {
        LlamaForCausalLM llama = llama();
        int[] context = {1, 403, 407, 261, 378, 432};
        int[] x = {383, 286, 261, 376};
        PrefixModelForCausalLM model =
                new PrefixModelForCausalLM(
                        llama,
                        PrefixConfig.builder().fromModel(llama).setNumPrefixTokens(6).build());
        assertEquals(6 * 2 * 5 * 4 * 8, model.countTrainableParameters());
        NDList cache = run(llama, new NDList(ids(context)));
        // prompt_embeddings layout: [P, (2 * layer + key/value) * kvHeads * headDim + head * d + e]
        NDArray stacked =
                NDArrays.stack(cache.subNDList(1).subNDList(0, 10), 0); // [10, 1, 4, 6, 8]
        NDArray table = stacked.squeeze(1).transpose(2, 0, 1, 3).reshape(6, 10 * 4 * 8);
        model.getPrefixEncoder().getEmbedding().getArray().set(table.toFloatArray());
        int[] all = new int[context.length + x.length];
        System.arraycopy(context, 0, all, 0, context.length);
        System.arraycopy(x, 0, all, context.length, x.length);
        NDArray expected = run(llama, new NDList(ids(all))).head().get(":, 6:, :");
        assertRoundingClose(
                expected,
                run(model, new NDList(ids(x))).head(),
                LlamaRounding.logits(llama.getConfig(), all.length),
                "the prefix against the context");
    }

    @Test
    void cachedGenerationWithThePrefixEqualsFullRecomputation() throws Exception {
        LlamaForCausalLM llama = llama();
        // the prefix is drawn: a fixed seed makes it one whose greedy path is clear of rounding,
        // whatever other tests drew before in this JVM
        Engine.getInstance().setRandomSeed(PREFIX_SEED);
        PrefixModelForCausalLM model =
                new PrefixModelForCausalLM(
                        llama,
                        PrefixConfig.builder().fromModel(llama).setNumPrefixTokens(5).build());
        List<int[]> prompt = List.of(new int[] {1, 403, 407});
        CausalLMGenerator generator = new CausalLMGenerator(model);
        int[] cached =
                generator
                        .generate(
                                prompt,
                                GenerationConfig.builder().optMaxNewTokens(40).build(),
                                manager)
                        .get(0);
        int[] full =
                generator
                        .generate(
                                prompt,
                                GenerationConfig.builder()
                                        .optMaxNewTokens(40)
                                        .optUseCache(false)
                                        .build(),
                                manager)
                        .get(0);
        LlamaRounding.assertClearGreedyPath(
                model, llama.getConfig(), full, 3, 0, manager, "greedy with the prefix");
        assertArrayEquals(full, cached);
    }

    @Test
    void djlsTextGeneratorRunsOnThePrefixModel() throws Exception {
        LlamaForCausalLM llama = llama();
        Engine.getInstance().setRandomSeed(PREFIX_SEED); // a drawn prefix, as in the cache test
        PrefixModelForCausalLM prefixed =
                new PrefixModelForCausalLM(
                        llama,
                        PrefixConfig.builder().fromModel(llama).setNumPrefixTokens(4).build());
        int[] prompt = {1, 403, 407};
        int[] own =
                new CausalLMGenerator(prefixed)
                        .generate(
                                List.of(prompt),
                                GenerationConfig.builder().optMaxNewTokens(15).build(),
                                manager)
                        .get(0);
        LlamaRounding.assertClearGreedyPath(
                prefixed,
                llama.getConfig(),
                own,
                prompt.length,
                0,
                manager,
                "greedy with the prefix");
        try (Model model = Model.newInstance("prefixed");
                NDManager scope = manager.newSubManager()) {
            model.setBlock(prefixed);
            try (Predictor<NDList, CausalLMOutput> predictor =
                    model.newPredictor(new CausalLMTranslator())) {
                SearchConfig search = new SearchConfig();
                search.setMaxSeqLength(prompt.length + 15);
                search.setPadTokenId(0);
                NDArray input =
                        scope.create(Arrays.stream(prompt).asLongStream().toArray()).reshape(1, -1);
                long[] greedy =
                        new TextGenerator(predictor, "greedy", search)
                                .generate(input)
                                .toLongArray();
                assertArrayEquals(Arrays.stream(own).asLongStream().toArray(), greedy);
                search.setBeam(2);
                NDArray beams = new TextGenerator(predictor, "beam", search).generate(input);
                assertEquals(prompt.length + 15, beams.getShape().get(1));
                NDArray contrastive =
                        new TextGenerator(predictor, "contrastive", search).generate(input);
                assertEquals(prompt.length + 15, contrastive.getShape().get(1));
            }
        }
    }
}
