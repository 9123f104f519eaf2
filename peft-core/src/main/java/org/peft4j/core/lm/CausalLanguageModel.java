package org.peft4j.core.lm;

import ai.djl.nn.Block;

import org.peft4j.core.PeftModel;
import org.peft4j.core.parallel.ShardGroup;

import java.util.function.Supplier;

/**
 * A decoder-only language model as a DJL block, in DJL's text-generation convention.
 *
 * <p>Input, {@code B} rows of {@code T} new tokens after {@code P} cached ones:
 *
 * <ul>
 *   <li>{@code inputIds} {@code [B, T]} int64;
 *   <li>{@code positionIds} {@code [B, T]} int64 (optional with the mask: {@code P .. P+T-1});
 *   <li>{@code attentionMask} {@code [B, P+T]} int64, 1 for a token and 0 for padding, or an
 *       additive float mask {@code [B, 1, T, P+T]} (0 where attention is allowed, a large negative
 *       number where not) that replaces the causal mask (optional: all ones);
 *   <li>past key/values, {@code 2 L} arrays {@code [B, kvHeads, P, headDim]} in the order {@code
 *       key_0, value_0, key_1, ...} (optional; requires positions and mask).
 * </ul>
 *
 * <p>Output: {@code logits [B, T, vocab]}, then the {@code 2 L} present key/values {@code [B,
 * kvHeads, P+T, headDim]} (the cache for the next step), then the last hidden states {@code [B, T,
 * hidden]} (after the final norm).
 *
 * <p>Lengths: a row's cached and new tokens together, {@code P+T}, hold positions {@code 0 ..
 * P+T-1}, and may not exceed {@link #getMaxPositions()}; a model refuses a longer input rather than
 * compute positions it was never trained on.
 */
public interface CausalLanguageModel extends Block {

    /**
     * Returns the number of decoder layers {@code L}.
     *
     * @return {@code L}
     */
    int getNumHiddenLayers();

    /**
     * Returns the number of query heads.
     *
     * @return the attention heads
     */
    int getNumAttentionHeads();

    /**
     * Returns the number of key/value heads (fewer than the query heads with grouped-query
     * attention).
     *
     * @return the kv heads, the second dimension of every cache array
     */
    int getNumKeyValueHeads();

    /**
     * Returns the size of one attention head.
     *
     * @return the head dimension, the last dimension of every cache array
     */
    int getHeadDim();

    /**
     * Returns the ranks the model's layers are split across. A split model holds {@code kvHeads /
     * T} key/value heads per rank, so every cache array it reads or returns is {@code [B, kvHeads /
     * T, P, headDim]}.
     *
     * @return the group; of degree 1 (the default) for a model on one process
     */
    default ShardGroup getShardGroup() {
        return ShardGroup.single();
    }

    /**
     * Returns the width of the hidden states.
     *
     * @return the hidden size
     */
    int getHiddenSize();

    /**
     * Returns the vocabulary size, the last dimension of the logits.
     *
     * @return the vocabulary size
     */
    int getVocabSize();

    /**
     * Returns the context: the most tokens one row may hold, cached and new together. For Llama
     * this is {@code max_position_embeddings}; a prefix model's is its base model's less the
     * prefix's virtual tokens, which take the first positions.
     *
     * @return the context in tokens; {@link Integer#MAX_VALUE} (the default) for a model without a
     *     limit
     */
    default int getMaxPositions() {
        return Integer.MAX_VALUE;
    }

    /**
     * Returns the context of any block that runs as a causal language model: its own {@link
     * #getMaxPositions()} if it is one, else that of the model an adapter wraps (an adapter that is
     * not itself a {@code CausalLanguageModel}, such as LoRA, takes no positions).
     *
     * @param model a causal language model, or an adapter model around one
     * @return the context in tokens; {@link Integer#MAX_VALUE} when none is known
     */
    static int maxPositionsOf(Block model) {
        if (model instanceof CausalLanguageModel) {
            return ((CausalLanguageModel) model).getMaxPositions();
        }
        if (model instanceof PeftModel) {
            return maxPositionsOf(((PeftModel) model).getBaseModel());
        }
        return Integer.MAX_VALUE;
    }

    /**
     * Refuses a forward pass whose row would run past a context, on the inputs' shapes, so without
     * reading the positions back from the device.
     *
     * @param cached the tokens already in the key/value cache, {@code P}
     * @param fresh the new tokens, {@code T}
     * @param maxPositions the context
     * @param context what the context is and what to do, the end of the message after {@code "a
     *     sequence of N tokens (P cached, T new) "}; only called when the input is refused
     * @throws IllegalArgumentException if {@code P + T} exceeds {@code maxPositions}
     */
    static void requireWithinContext(
            long cached, long fresh, int maxPositions, Supplier<String> context) {
        if (cached + fresh > maxPositions) {
            throw new IllegalArgumentException(
                    "a sequence of "
                            + (cached + fresh)
                            + " tokens ("
                            + cached
                            + " cached, "
                            + fresh
                            + " new) "
                            + context.get());
        }
    }
}
