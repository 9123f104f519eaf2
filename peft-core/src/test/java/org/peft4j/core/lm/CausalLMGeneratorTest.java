package org.peft4j.core.lm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import org.junit.jupiter.api.Test;

import java.util.List;

/** The generator's length rules, on a model with an 8-token context that records what it saw. */
class CausalLMGeneratorTest {

    private static final int CONTEXT = 8;
    private static final int VOCAB = 20;
    private static final int NEXT = 7; // the token the model always predicts

    /**
     * A one-layer causal LM of context 8 without weights: it predicts token 7 everywhere, keeps a
     * cache of zeros, refuses a sequence past its context (as a real one must), and records the
     * largest position and sequence it was given.
     */
    static final class ShortModel extends AbstractBlock implements CausalLanguageModel {
        int calls;
        long maxPosition = -1;
        long maxSequence;

        ShortModel() {
            super((byte) 1);
        }

        @Override
        protected NDList forwardInternal(
                ParameterStore ps,
                NDList inputs,
                boolean training,
                PairList<String, Object> params) {
            calls++;
            NDArray ids = inputs.get(0);
            long batch = ids.getShape().get(0);
            long length = ids.getShape().get(1);
            long past = inputs.size() > 3 ? inputs.get(3).getShape().get(2) : 0;
            if (past + length > CONTEXT) {
                throw new IllegalStateException("ran past the context: " + (past + length));
            }
            maxSequence = Math.max(maxSequence, past + length);
            maxPosition = Math.max(maxPosition, inputs.get(1).max().getLong());
            NDManager manager = ids.getManager();
            NDArray logits = manager.zeros(new Shape(batch, length, VOCAB));
            logits.set(new NDIndex(":, :, {}", NEXT), 1f);
            NDArray fresh = manager.zeros(new Shape(batch, 1, length, 1));
            NDArray key = past > 0 ? inputs.get(3).concat(fresh, 2) : fresh;
            NDArray value = past > 0 ? inputs.get(4).concat(fresh, 2) : fresh;
            return new NDList(logits, key, value, manager.zeros(new Shape(batch, length, 1)));
        }

        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return new Shape[] {new Shape(inputShapes[0].get(0), inputShapes[0].get(1), VOCAB)};
        }

        @Override
        public int getNumHiddenLayers() {
            return 1;
        }

        @Override
        public int getNumAttentionHeads() {
            return 1;
        }

        @Override
        public int getNumKeyValueHeads() {
            return 1;
        }

        @Override
        public int getHeadDim() {
            return 1;
        }

        @Override
        public int getHiddenSize() {
            return 1;
        }

        @Override
        public int getVocabSize() {
            return VOCAB;
        }

        @Override
        public int getMaxPositions() {
            return CONTEXT;
        }
    }

    private static GenerationConfig config(int newTokens, PromptTruncation truncation, boolean cache) {
        return GenerationConfig.builder()
                .optMaxNewTokens(newTokens)
                .optPromptTruncation(truncation)
                .optUseCache(cache)
                .build();
    }

    @Test
    void aPromptThatFitsWithItsNewTokensRunsToTheLastPosition() {
        for (boolean cache : new boolean[] {true, false}) {
            ShortModel model = new ShortModel();
            try (NDManager manager = NDManager.newBaseManager()) {
                int[] out =
                        new CausalLMGenerator(model)
                                .generate(
                                        List.of(new int[] {1, 11, 12, 13, 14}),
                                        config(3, PromptTruncation.NONE, cache),
                                        manager)
                                .get(0);
                assertArrayEquals(new int[] {1, 11, 12, 13, 14, NEXT, NEXT, NEXT}, out);
            }
            // the last new token is never fed back: positions 0 to 6 of 8
            assertEquals(6, model.maxPosition, "cache " + cache);
            assertEquals(7, model.maxSequence, "cache " + cache);
        }
    }

    /** Runs the generator on prompts it must refuse, and returns the refusal. */
    private static ContextOverflowException refusal(
            ShortModel model, GenerationConfig config, int[]... prompts) {
        try (NDManager manager = NDManager.newBaseManager()) {
            return assertThrows(
                    ContextOverflowException.class,
                    () -> new CausalLMGenerator(model).generate(List.of(prompts), config, manager));
        }
    }

    @Test
    void aPromptTooLongForTheContextIsRefusedBeforeAnythingRuns() {
        ShortModel model = new ShortModel();
        ContextOverflowException e =
                refusal(
                        model,
                        config(3, PromptTruncation.NONE, true),
                        new int[] {1, 11, 12, 13, 14, 15});
        assertEquals(
                "the prompt of 6 tokens and maxNewTokens 3 need 9 positions, but the model's"
                        + " context is 8: shorten the prompt, lower maxNewTokens, or cut"
                        + " prompts on the left with"
                        + " optPromptTruncation(PromptTruncation.LEFT)",
                e.getMessage());
        // the lengths, for a caller that words the message in its own names
        assertEquals(6, e.getPromptTokens());
        assertEquals(3, e.getMaxNewTokens());
        assertEquals(CONTEXT, e.getContext());
        assertEquals(PromptTruncation.NONE, e.getTruncation());
        // in a batch, the row is named
        e = refusal(model, config(3, PromptTruncation.NONE, false), new int[] {1}, new int[6]);
        assertTrue(e.getMessage().startsWith("prompt 1 (of 2) of 6 tokens"), e.getMessage());
        assertEquals(0, model.calls, "refused before the first forward pass");
    }

    @Test
    void leftTruncationKeepsTheFirstTokenAndTheEndWithAndWithoutTheCache() {
        for (boolean cache : new boolean[] {true, false}) {
            ShortModel model = new ShortModel();
            try (NDManager manager = NDManager.newBaseManager()) {
                List<int[]> out =
                        new CausalLMGenerator(model)
                                .generate(
                                        List.of(
                                                new int[] {1, 11, 12, 13, 14, 15, 16, 17, 18},
                                                new int[] {1, 11}),
                                        config(3, PromptTruncation.LEFT, cache),
                                        manager);
                // 8 - 3 = 5 prompt tokens: BOS and the last 4; the short row is left alone
                assertArrayEquals(new int[] {1, 15, 16, 17, 18, NEXT, NEXT, NEXT}, out.get(0));
                assertArrayEquals(new int[] {1, 11, NEXT, NEXT, NEXT}, out.get(1));
            }
            assertEquals(6, model.maxPosition, "cache " + cache);
        }
    }

    @Test
    void leftTruncationCannotMakeRoomForMoreNewTokensThanTheContext() {
        ContextOverflowException e =
                refusal(new ShortModel(), config(8, PromptTruncation.LEFT, true), new int[] {1, 11});
        assertEquals(
                "maxNewTokens 8 leaves no room for a prompt in the model's context of 8"
                        + " positions; lower it to 7 or less",
                e.getMessage());
        assertEquals(PromptTruncation.LEFT, e.getTruncation());
        assertEquals(8, e.getMaxNewTokens());
    }

    @Test
    void aBlockWithoutAKnownContextIsNotLimited() {
        assertEquals(
                Integer.MAX_VALUE,
                CausalLanguageModel.maxPositionsOf(Linear.builder().setUnits(1).build()));
        assertEquals(CONTEXT, CausalLanguageModel.maxPositionsOf(new ShortModel()));
    }
}
