package org.peft4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;

import ai.djl.Model;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.GradientCollector;
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
import org.peft4j.core.lm.GenerationConfig;
import org.peft4j.core.lm.TokenCrossEntropy;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.core.testing.GreedyMargins;
import org.peft4j.core.tree.BlockPaths;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.llama.LlamaRounding;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.prefix.PrefixConfig;
import org.peft4j.prefix.PrefixModelForCausalLM;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A prefix trained through DJL's Trainer on the real stories260K Llama, saved, then told by the
 * Java API and by {@code peft4j generate} alike.
 */
class PrefixAdapterCommandTest {

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
                                    assertSameBits(
                                            baseBefore.get(k),
                                            p.getArray().toFloatArray(),
                                            k + ": a frozen base weight is never written"));
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
            // The command computes the same math on the same loaded prefix, but not bitwise the
            // same sums: greedy decoding gives it the same tokens up to the first step whose
            // margin is not clear of the logits' rounding (this trained prefix has one, a lead of
            // about 1e-4 at token 31, ten times the differences seen but within the bound), and
            // the whole text where there is none.
            float[] logits = LlamaRounding.logits((PrefixModelForCausalLM) loaded, story, manager);
            int clear =
                    GreedyMargins.firstUnclearStep(
                            logits,
                            llama.getVocabSize(),
                            story,
                            1,
                            LlamaRounding.tolerance(llama.getConfig(), story.length, logits),
                            "the prefix's story");
            assertTrue(clear > 20, "the story is clear of rounding for " + clear + " tokens");
            String sure = tokenizer.decode(Arrays.copyOf(story, clear));

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
            assertTrue(cli[1].startsWith(sure), sure + " / " + cli[1]);
            if (clear == story.length) {
                // the command prints the text as it streams, then ends the line; the text itself
                // may end in a line break, which strip() would have taken for the command's
                assertEquals(text + System.lineSeparator(), cli[1]);
            }
        }
    }
}
