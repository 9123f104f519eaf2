package org.peft4j.examples.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertClose;

import ai.djl.Model;
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
import org.peft4j.examples.cli.CliRunner;
import org.peft4j.examples.llama.tokenizer.LlamaTokenizer;
import org.peft4j.prefix.PrefixConfig;
import org.peft4j.prefix.PrefixModelForCausalLM;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Prefix tuning on the real stories260K Llama. */
class LlamaPrefixTest {

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
        assertClose(expected, run(model, new NDList(ids(x))).head(), 1e-4);
    }

    @Test
    void cachedGenerationWithThePrefixEqualsFullRecomputation() throws Exception {
        LlamaForCausalLM llama = llama();
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
        assertArrayEquals(full, cached);
    }

    @Test
    void djlsTextGeneratorRunsOnThePrefixModel() throws Exception {
        LlamaForCausalLM llama = llama();
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

    @Test
    void prefixTrainingLearnsATargetSentenceThatTheSavedAdapterThenTells(@TempDir Path dir)
            throws Exception {
        String target =
                "Once upon a time, there was a big dog named Max. Max liked to swim in the lake.";
        LlamaForCausalLM llama = llama();
        Map<String, float[]> baseBefore = new LinkedHashMap<>();
        BlockPaths.parameters(llama)
                .forEach((k, p) -> baseBefore.put(k, p.getArray().toFloatArray()));
        PrefixModelForCausalLM model =
                new PrefixModelForCausalLM(
                        llama,
                        PrefixConfig.builder().fromModel(llama).setNumPrefixTokens(8).build());
        float first;
        float last;
        try (LlamaTokenizer tokenizer = LlamaTokenizer.findNextTo(Fixtures.stories260K());
                Model holder = Model.newInstance("prefix")) {
            NDArray sentence = ids(tokenizer.encode(target, true, true));
            holder.setBlock(model);
            DefaultTrainingConfig config =
                    new DefaultTrainingConfig(new L2Loss())
                            .optOptimizer(
                                    Optimizer.adam()
                                            .optLearningRateTracker(Tracker.fixed(3e-2f))
                                            .build());
            first = Float.NaN;
            last = Float.NaN;
            try (Trainer trainer = holder.newTrainer(config)) {
                for (int step = 0; step < 200; step++) {
                    try (NDManager scope = manager.newSubManager();
                            GradientCollector collector = trainer.newGradientCollector()) {
                        NDArray x = sentence.duplicate();
                        x.attach(scope);
                        NDArray logits = trainer.forward(new NDList(x)).head();
                        NDArray loss = TokenCrossEntropy.loss(logits, x);
                        last = loss.getFloat();
                        if (step == 0) {
                            first = last;
                        }
                        collector.backward(loss);
                    }
                    trainer.step();
                }
            }
            assertTrue(last <= 0.5f * first, "loss " + first + " -> " + last);
            BlockPaths.parameters(llama)
                    .forEach(
                            (k, p) ->
                                    assertArrayEquals(
                                            baseBefore.get(k), p.getArray().toFloatArray(), k));
            model.savePretrained(dir);

            PeftModel loaded = PeftModel.fromPretrained(llama(), dir);
            int[] story =
                    new CausalLMGenerator((PrefixModelForCausalLM) loaded)
                            .generate(
                                    List.of(new int[] {1}),
                                    GenerationConfig.builder()
                                            .optMaxNewTokens(40)
                                            .optEosTokenIds(2)
                                            .build(),
                                    manager)
                            .get(0);
            String text = tokenizer.decode(story);
            assertTrue(text.contains("a big dog named Max"), text);

            String[] cli =
                    CliRunner.run(
                            "generate",
                            "--model",
                            Fixtures.stories260K().toString(),
                            "--adapter",
                            dir.toString(),
                            "--max-new-tokens",
                            "40");
            assertEquals("0", cli[0], cli[2]);
            // the command prints the text as it streams, then ends the line; the text itself may
            // end in a line break, which strip() would have taken for the command's
            assertEquals(text + System.lineSeparator(), cli[1]);
        }
    }
}
