package org.peft4j.models.llama;

import static org.peft4j.core.testing.ArrayAssertions.U;
import static org.peft4j.core.testing.ArrayAssertions.floats;
import static org.peft4j.core.testing.ArrayAssertions.maxAbs;

import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;

import org.peft4j.core.testing.GreedyMargins;

import java.util.Arrays;

/**
 * How far two float32 evaluations of a Llama's logits may be apart when they compute the same
 * math in other orders: cached or recomputed, batched or alone, a prefix as a cache or as context,
 * merged or unmerged adapters, another CPU's code path, or only other buffers (MKL picks its path
 * by the buffers' alignment, so even a second pass is not bitwise guaranteed).
 *
 * <p>A logit is the end of a chain of roundings ({@link #roundings}): per layer an RMSNorm, the
 * q, k and v projections, the rotation, the scores, a softmax over the sequence, the context, the
 * output projection, the residual, and the same for the feed-forward block. Each rounding changes a
 * partial result by at most {@code u} of its magnitude, up or down; the norms keep the stream at
 * the scale of the output layer's input, so those magnitudes are taken as the largest logit's,
 * {@code M}. Errors of either sign add up like a random walk: {@code n} independent roundings
 * spread over {@code +-u M} have a standard deviation of {@code u M sqrt(n / 3)}, and {@code 4
 * sqrt(n) u M} is 7 of those, exceeded with probability about {@code 1e-12} (Higham and Mary,
 * SIAM J. Sci. Comput. 41, 2019, prove bounds of this {@code sqrt(n)} form without assuming a
 * distribution). Two evaluations are apart by at most twice that: {@code c = 8 sqrt(n)}, whatever
 * either's summation order. The worst case, {@code n u M}, holds for any rounding but is about 70
 * times wider for stories260K: too wide to notice a cache that is off by a little, or to show
 * that a greedy margin of {@code 4e-3} is clear of rounding.
 */
public final class LlamaRounding {

    private LlamaRounding() {}

    /**
     * Returns the roundings along the deepest path from the embeddings to a logit, for sequences
     * of up to {@code length} tokens (the softmax and the context sum over them).
     *
     * @param config the model's sizes
     * @param length the longest sequence, cached tokens included
     * @return {@code n}
     */
    public static long roundings(LlamaConfig config, long length) {
        long h = config.getHiddenSize();
        long d = config.getHeadDim();
        long norm = h + 5; // squares summed, the mean, epsilon, the root, the division, the weight
        long attention =
                norm
                        + h // q, k or v
                        + (config.isQkvBias() ? 1 : 0) // its bias
                        + (config.isQkNorm() ? d + 5 : 0) // Qwen3's per-head norm
                        + 3 // the rotation: two products and a sum
                        + d // the scores
                        + (length + 2) // the softmax: exponentials, their sum, the division
                        + length // the context
                        + (long) config.getNumAttentionHeads() * d // the output projection
                        + (config.isAttentionBias() ? 1 : 0) // its bias
                        + 1; // the residual
        long feedForward =
                norm
                        + h // gate or up
                        + 4 // SiLU: exponential, sum, division, the product with up
                        + config.getIntermediateSize() // down
                        + (config.isMlpBias() ? 2 : 0) // the biases of gate or up, and of down
                        + 1; // the residual
        return config.getNumHiddenLayers() * (attention + feedForward) + norm + h;
    }

    /**
     * Returns {@code c} for {@link org.peft4j.core.testing.ArrayAssertions#assertRoundingClose}
     * between two evaluations of the logits: {@code 2 (evaluations) x 4 sqrt(n)}.
     *
     * @param config the model's sizes
     * @param length the longest sequence, cached tokens included
     * @return the number of unit roundoffs of the largest logit allowed
     */
    public static double logits(LlamaConfig config, long length) {
        return 2 * 4 * Math.sqrt(roundings(config, length));
    }

    /**
     * Returns the absolute tolerance of {@link #logits}: {@code c u (|l| + max |l|) <= 2 c u max
     * |l|}, how far either of two evaluations may be from the other; for {@link
     * org.peft4j.core.testing.GreedyMargins}.
     *
     * @param config the model's sizes
     * @param length the longest sequence, cached tokens included
     * @param reference the logits of one of them
     * @return the largest difference of a logit
     */
    public static double tolerance(LlamaConfig config, long length, float[] reference) {
        return 2 * logits(config, length) * U * maxAbs(reference);
    }

    /**
     * Returns the logits of one row over a whole sequence, from one forward pass.
     *
     * @param model a causal language model, or an adapter model around one
     * @param tokens the sequence
     * @param manager where the arrays live
     * @return {@code [tokens.length, vocab]}
     */
    public static float[] logits(Block model, int[] tokens, NDManager manager) {
        try (NDManager scope = manager.newSubManager()) {
            long[] ids = Arrays.stream(tokens).asLongStream().toArray();
            NDList input = new NDList(scope.create(ids).reshape(1, -1));
            return floats(model.forward(new ParameterStore(scope, false), input, false).head());
        }
    }

    /**
     * Asserts that greedy decoding of {@code tokens} is clear of rounding at every step ({@link
     * GreedyMargins#assertClearGreedyPath}): then any computation of the model whose logits are
     * within {@code extra} plus {@link #tolerance} of one full pass generates exactly these
     * tokens, and sequences from such computations can be compared for equality.
     *
     * @param model the model
     * @param config its sizes
     * @param tokens the prompt and the generated tokens
     * @param promptLength the prompt's length
     * @param extra a difference of the logits beyond rounding, such as other weights' (0 if none)
     * @param manager where the arrays live
     * @param what what is decoded, for the message
     * @return the smallest margin
     */
    public static double assertClearGreedyPath(
            Block model,
            LlamaConfig config,
            int[] tokens,
            int promptLength,
            double extra,
            NDManager manager,
            String what) {
        float[] reference = logits(model, tokens, manager);
        return GreedyMargins.assertClearGreedyPath(
                reference,
                config.getVocabSize(),
                tokens,
                promptLength,
                extra + tolerance(config, tokens.length, reference),
                what);
    }
}
