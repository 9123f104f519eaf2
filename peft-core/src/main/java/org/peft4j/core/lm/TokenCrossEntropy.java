package org.peft4j.core.lm;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * The causal language-modelling loss over target tokens only: position {@code t} predicts label
 * {@code t + 1}, labels equal to the ignore index (source tokens, padding) do not count.
 *
 * <pre>
 *   loss = - sum_{t : labels[t+1] != ignore} log softmax(logits[t])[labels[t+1]] / count
 * </pre>
 *
 * <p>DJL's {@code SoftmaxCrossEntropyLoss} has no ignore index, hence this.
 */
public final class TokenCrossEntropy {

    /** Hugging Face's and PaddleNLP's ignore index. */
    public static final int IGNORE_INDEX = -100;

    private TokenCrossEntropy() {}

    /**
     * Computes the mean loss over the counted tokens.
     *
     * @param logits {@code [B, T, V]}
     * @param labels {@code [B, T]} int64, aligned with the input ids, {@link #IGNORE_INDEX} where
     *     not counted
     * @return a scalar, attached to {@code logits}' manager; 0 when no token counts
     */
    public static NDArray loss(NDArray logits, NDArray labels) {
        NDArray[] parts = sumAndCount(logits, labels);
        return parts[0].div(parts[1].maximum(1f));
    }

    /**
     * Computes the summed loss and the number of counted tokens, for averaging over several
     * micro-batches or processes.
     *
     * @param logits {@code [B, T, V]}
     * @param labels {@code [B, T]}, {@link #IGNORE_INDEX} where not counted
     * @return {@code {sum of -log p, count}}, both float32 scalars
     */
    public static NDArray[] sumAndCount(NDArray logits, NDArray labels) {
        // Shift the labels, not the logits: slicing [B, T, V] would cost a copy in the backward
        // pass; position T-1 predicts nothing and gets the ignore index.
        NDArray targets = shiftedTargets(labels);
        NDArray counted = targets.neq(IGNORE_INDEX);
        NDArray safeTargets = targets.mul(counted.toType(DataType.INT64, false)).expandDims(-1);
        NDArray logProbs = logits.toType(DataType.FLOAT32, false).logSoftmax(-1);
        NDArray picked = logProbs.gather(safeTargets, -1).squeeze(-1);
        NDArray weights = counted.toType(DataType.FLOAT32, false);
        return new NDArray[] {picked.mul(weights).sum().neg(), weights.sum()};
    }

    /** {@code targets[:, t] = labels[:, t + 1]}, the ignore index at the last position. */
    private static NDArray shiftedTargets(NDArray labels) {
        NDArray next = labels.get(":, 1:").toType(DataType.INT64, false);
        NDArray last =
                labels.getManager()
                        .full(new Shape(labels.getShape().get(0), 1), IGNORE_INDEX, DataType.INT64);
        return next.concat(last, 1);
    }

    /**
     * Counts the predictions that equal their target, over the counted tokens.
     *
     * @param logits {@code [B, T, V]}
     * @param labels {@code [B, T]}, {@link #IGNORE_INDEX} where not counted
     * @return {@code {correct, count}}
     */
    public static long[] accuracy(NDArray logits, NDArray labels) {
        NDArray predicted = logits.argMax(-1);
        NDArray targets = shiftedTargets(labels);
        NDArray counted = targets.neq(IGNORE_INDEX);
        long correct = predicted.eq(targets).logicalAnd(counted).sum().getLong();
        long count = counted.sum().getLong();
        return new long[] {correct, count};
    }
}
