package org.peft4j.models.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * Builds the additive attention mask from DJL's 2-D padding mask, causality and, for Mistral, the
 * sliding window.
 */
final class AttentionMasks {

    /** Added to the score of a forbidden position: the most negative float, as Hugging Face. */
    static final float FORBIDDEN = -Float.MAX_VALUE;

    private AttentionMasks() {}

    /**
     * Returns the additive mask {@code [B, 1, T, P+T]}: 0 where query {@code i} (at cache position
     * {@code P+i}) may attend key {@code j} ({@code j <= P+i}, {@code j > P+i-window} when there is
     * a window, and key {@code j} is not padding), {@link #FORBIDDEN} elsewhere. A 4-D mask is
     * taken as already additive, the window still applied on top of it. For a single new token
     * without a padding mask and within the window there is nothing to mask: {@code null}.
     *
     * <p>The window counts cache positions, as Hugging Face's Mistral does: a prefix-tuning prefix
     * and left padding occupy positions too.
     *
     * @param mask {@code [B, P+T]} of 1 (token) and 0 (padding), a 4-D additive mask, or {@code
     *     null} for no padding
     * @param ids the input ids {@code [B, T]}, whose manager owns the result
     * @param past the cached length {@code P}
     * @param window the sliding window, or 0 for none
     */
    static NDArray additive(NDArray mask, NDArray ids, long past, long window) {
        long batch = ids.getShape().get(0);
        long length = ids.getShape().get(1);
        long total = past + length;
        boolean windowed = window > 0 && total > window;
        if (mask != null && mask.getShape().dimension() == 4) {
            Shape expected = new Shape(batch, 1, length, total);
            if (!mask.getShape().equals(expected)) {
                throw new IllegalArgumentException(
                        "a 4-D attention mask must have shape "
                                + expected
                                + " [batch, 1, new tokens, cached + new tokens], got "
                                + mask.getShape());
            }
            NDArray given =
                    mask.getDataType() == DataType.FLOAT32
                            ? mask
                            : mask.toType(DataType.FLOAT32, false);
            // the window applies whatever the caller's mask allows
            return windowed ? given.minimum(additive(null, ids, past, window)) : given;
        }
        if (length == 1 && !windowed) {
            // one new token may attend to every cached one: only padding is masked
            if (mask == null) {
                return null;
            }
            checkShape(mask, batch, total);
            return mask.toType(DataType.FLOAT32, false)
                    .sub(1f)
                    .mul(-FORBIDDEN)
                    .reshape(batch, 1, 1, total);
        }
        NDManager manager = ids.getManager();
        NDArray keys = manager.arange(0, total, 1, DataType.INT64);
        NDArray queries = manager.arange(past, total, 1, DataType.INT64).expandDims(1);
        NDArray allowed = keys.lte(queries);
        if (windowed) {
            allowed = allowed.logicalAnd(keys.gt(queries.sub(window)));
        }
        allowed = allowed.reshape(1, 1, length, total);
        if (mask != null) {
            checkShape(mask, batch, total);
            NDArray tokens = mask.toType(DataType.BOOLEAN, false).reshape(batch, 1, 1, total);
            allowed = allowed.logicalAnd(tokens);
        }
        // allowed: 1 - 1 = 0; forbidden: (0 - 1) * -FORBIDDEN = FORBIDDEN
        return allowed.toType(DataType.FLOAT32, false).sub(1f).mul(-FORBIDDEN);
    }

    private static void checkShape(NDArray mask, long batch, long total) {
        Shape expected = new Shape(batch, total);
        if (!mask.getShape().equals(expected)) {
            throw new IllegalArgumentException(
                    "the attention mask must have shape "
                            + expected
                            + " [batch, cached + new tokens], got "
                            + mask.getShape());
        }
    }
}
