package org.peft4j.models.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.peft4j.core.lm.CausalLMGenerator;
import org.peft4j.core.lm.CausalLanguageModel;
import org.peft4j.core.lm.GenerationConfig;
import org.peft4j.core.lm.PromptTruncation;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.lora.LoRAModel;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.prefix.PrefixConfig;
import org.peft4j.prefix.PrefixModelForCausalLM;

import java.util.Arrays;
import java.util.List;

/**
 * Lengths against stories260K's context of 512 positions: the model refuses a longer sequence,
 * cached or not, and generation refuses a prompt that does not fit with its new tokens, or cuts it
 * on the left when asked; a prefix takes positions of the context.
 */
class LlamaContextTest {

    private static NDManager manager;
    private static LlamaForCausalLM llama;
    private static int[] longPrompt; // 1472 tokens of real text, BOS first

    @BeforeAll
    static void setUp() throws Exception {
        manager = NDManager.newBaseManager();
        llama = LlamaForCausalLM.fromPretrained(Fixtures.stories260K(), manager);
        try (LlamaTokenizer tokenizer = LlamaTokenizer.findNextTo(Fixtures.stories260K())) {
            StringBuilder text = new StringBuilder();
            int[] ids;
            do {
                text.append("Once upon a time, there was a little girl named Lily. She loved to")
                        .append(" play outside in the park with her dog. ");
                ids = tokenizer.encode(text.toString(), true, false);
            } while (ids.length < 1472);
            longPrompt = Arrays.copyOf(ids, 1472);
        }
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    private static NDArray ids(int length) {
        long[] tokens = new long[length];
        Arrays.fill(tokens, 1, length, 261);
        tokens[0] = 1;
        return manager.create(tokens).reshape(1, length);
    }

    private static NDList run(Block block, NDList input) {
        return block.forward(new ParameterStore(manager, false), input, false);
    }

    @Test
    void theContextIsMaxPositionEmbeddings() {
        assertEquals(512, llama.getConfig().getMaxPositionEmbeddings());
        assertEquals(512, llama.getMaxPositions());
        assertEquals(512, CausalLanguageModel.maxPositionsOf(llama));
    }

    @Test
    void aSequencePastTheContextIsRefusedNamingItsLengthAndTheContext() {
        assertEquals(512, run(llama, new NDList(ids(512))).head().getShape().get(1));
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> run(llama, new NDList(ids(513))));
        assertEquals(
                "a sequence of 513 tokens (0 cached, 513 new) is longer than the model's"
                        + " max_position_embeddings, 512: positions 0 to 511 exist; shorten the"
                        + " input",
                e.getMessage());

        // the cached path: 500 tokens cached, 13 more
        NDList first = run(llama, new NDList(ids(500)));
        NDList next = new NDList(ids(13), manager.arange(500L, 513L).reshape(1, 13), manager.ones(
                new Shape(1, 513), DataType.INT64));
        next.addAll(first.subNDList(1, 1 + 2 * llama.getNumHiddenLayers()));
        e = assertThrows(IllegalArgumentException.class, () -> run(llama, next));
        assertTrue(
                e.getMessage().startsWith("a sequence of 513 tokens (500 cached, 13 new)"),
                e.getMessage());
    }

    @Test
    void aPositionIdPastTheContextIsNeverExtrapolated() {
        // an explicit position beyond the table fails in the lookup rather than reading an
        // angle the model never saw (the table used to be 2048 long on any model)
        NDList input =
                new NDList(
                        ids(2),
                        manager.create(new long[] {0, 600}).reshape(1, 2),
                        manager.ones(
                                new Shape(1, 2),
                                DataType.INT64));
        assertThrows(RuntimeException.class, () -> run(llama, input));
    }

    @Test
    void generationRefusesAPromptThatDoesNotFitWithItsNewTokens() {
        GenerationConfig config = GenerationConfig.builder().optMaxNewTokens(256).build();
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> new CausalLMGenerator(llama).generate(List.of(longPrompt), config, manager));
        assertTrue(
                e.getMessage()
                        .startsWith(
                                "the prompt of 1472 tokens and maxNewTokens 256 need 1728"
                                        + " positions, but the model's context is 512: "),
                e.getMessage());
        // an adapter that takes no positions (LoRA) has its base model's context
        LoRAModel lora =
                new LoRAModel(llama, LoRAConfig.builder().setTargetModules(".*q_proj.*").build());
        try {
            e =
                    assertThrows(
                            IllegalArgumentException.class,
                            () ->
                                    new CausalLMGenerator(lora, llama.getNumHiddenLayers())
                                            .generate(List.of(longPrompt), config, manager));
            assertTrue(e.getMessage().contains("context is 512"), e.getMessage());
        } finally {
            lora.unload();
        }
    }

    @Test
    void leftTruncationKeepsBosAndTheEndOfTheLongPrompt() {
        for (boolean cache : new boolean[] {true, false}) {
            GenerationConfig config =
                    GenerationConfig.builder()
                            .optMaxNewTokens(16)
                            .optUseCache(cache)
                            .optPromptTruncation(PromptTruncation.LEFT)
                            .build();
            int[] out =
                    new CausalLMGenerator(llama).generate(List.of(longPrompt), config, manager).get(0);
            assertTrue(out.length > 496 && out.length <= 512, "cache " + cache + ": " + out.length);
            assertEquals(1, out[0], "BOS kept");
            assertArrayEquals(
                    Arrays.copyOfRange(longPrompt, 1472 - 495, 1472),
                    Arrays.copyOfRange(out, 1, 496),
                    "the prompt's last 495 tokens");
        }
    }

    @Test
    void aPrefixTakesPositionsOfTheContext() {
        // the prefix freezes the shared base model's weights, which these forward passes ignore
        PrefixModelForCausalLM prefixed =
                new PrefixModelForCausalLM(
                        llama, PrefixConfig.builder().fromModel(llama).setNumPrefixTokens(16).build());
        assertEquals(496, prefixed.getMaxPositions());
        assertEquals(496, CausalLanguageModel.maxPositionsOf(prefixed));
        assertEquals(496, run(prefixed, new NDList(ids(496))).head().getShape().get(1));
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> run(prefixed, new NDList(ids(497))));
        assertEquals(
                "a sequence of 497 tokens (0 cached, 497 new) does not fit after the prefix:"
                        + " the base model has 512 positions and the prefix's 16 virtual"
                        + " tokens take the first of them, leaving 496",
                e.getMessage());
        GenerationConfig config = GenerationConfig.builder().optMaxNewTokens(10).build();
        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                new CausalLMGenerator(prefixed)
                                        .generate(
                                                List.of(Arrays.copyOf(longPrompt, 490)),
                                                config,
                                                manager));
        assertTrue(
                e.getMessage().contains("need 500 positions, but the model's context is 496"),
                e.getMessage());
        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                new PrefixModelForCausalLM(
                                        llama,
                                        PrefixConfig.builder()
                                                .fromModel(llama)
                                                .setNumPrefixTokens(512)
                                                .build()));
        assertTrue(e.getMessage().contains("512 virtual tokens leaves no position"), e.getMessage());
    }
}
