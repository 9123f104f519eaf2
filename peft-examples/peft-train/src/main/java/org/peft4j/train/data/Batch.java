package org.peft4j.train.data;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import org.peft4j.core.lm.TokenCrossEntropy;

import java.util.List;

/**
 * A padded batch: ids, attention mask and labels {@code [B, T]}, padded on the right to the longest
 * example ({@code T}); padding has mask 0 and label {@code -100}.
 *
 * @param inputIds the ids, int64
 * @param attentionMask 1 for tokens, 0 for padding, int64
 * @param labels aligned labels, int64
 * @param targetTokens how many labels are learned (what the loss averages over)
 * @param tokens how many real tokens the batch holds
 */
public record Batch(
        NDArray inputIds, NDArray attentionMask, NDArray labels, long targetTokens, long tokens) {

    /** Pads with this id; masked out, so any id works. */
    static final int PAD = 0;

    /**
     * Pads examples into arrays.
     *
     * @param examples the examples
     * @param manager the manager that owns the arrays
     * @return the batch
     */
    public static Batch of(List<TokenizedExample> examples, NDManager manager) {
        int rows = examples.size();
        int width = 0;
        for (TokenizedExample example : examples) {
            width = Math.max(width, example.inputIds().length);
        }
        long[] ids = new long[rows * width];
        long[] mask = new long[rows * width];
        long[] labels = new long[rows * width];
        long targets = 0;
        long tokens = 0;
        for (int b = 0; b < rows; b++) {
            TokenizedExample example = examples.get(b);
            for (int t = 0; t < width; t++) {
                int i = b * width + t;
                boolean real = t < example.inputIds().length;
                ids[i] = real ? example.inputIds()[t] : PAD;
                mask[i] = real ? 1 : 0;
                labels[i] = real ? example.labels()[t] : TokenCrossEntropy.IGNORE_INDEX;
                // the first label is never predicted (nothing comes before it)
                targets += t > 0 && labels[i] >= 0 ? 1 : 0;
                tokens += real ? 1 : 0;
            }
        }
        Shape shape = new Shape(rows, width);
        return new Batch(
                manager.create(ids, shape),
                manager.create(mask, shape),
                manager.create(labels, shape),
                targets,
                tokens);
    }

    /**
     * Returns the model input: ids, positions {@code 0 .. T-1} and the mask.
     *
     * @return the causal-LM input
     */
    public NDList modelInput() {
        long rows = inputIds.getShape().get(0);
        long width = inputIds.getShape().get(1);
        NDArray positions =
                inputIds.getManager()
                        .arange(0, width, 1, ai.djl.ndarray.types.DataType.INT64)
                        .reshape(1, width)
                        .repeat(0, rows);
        return new NDList(inputIds, positions, attentionMask);
    }
}
