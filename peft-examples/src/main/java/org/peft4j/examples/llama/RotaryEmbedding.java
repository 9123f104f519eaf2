package org.peft4j.examples.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;

/**
 * Rotary position embeddings (Su et al., 2021) in Hugging Face's rotate-half layout: the pairs
 * rotated together are {@code (x[i], x[i + d/2])}.
 *
 * <pre>
 *   invFreq[i] = 1 / theta^(2i / d)                     (then rope scaling, if any)
 *   angle[p, i] = p * invFreq[i mod d/2]                for i in [0, d)
 *   rope(x) = x * cos(angle) + rotateHalf(x) * sin(angle),   rotateHalf([a, b]) = [-b, a]
 * </pre>
 */
public final class RotaryEmbedding {

    private final float[] invFreq;

    /**
     * Computes the inverse frequencies.
     *
     * @param headDim the head size {@code d}, even
     * @param theta the rotary base
     * @param scaling rope scaling, or {@code null}
     */
    public RotaryEmbedding(int headDim, double theta, RopeScaling scaling) {
        double[] freq = new double[headDim / 2];
        for (int i = 0; i < freq.length; i++) {
            freq[i] = 1.0 / Math.pow(theta, 2.0 * i / headDim);
        }
        if (scaling != null) {
            scaling.apply(freq);
        }
        invFreq = new float[freq.length];
        for (int i = 0; i < freq.length; i++) {
            invFreq[i] = (float) freq[i];
        }
    }

    /**
     * Computes the rotation for given positions.
     *
     * @param positions position ids {@code [B, T]}
     * @return {@code cos} and {@code sin}, each {@code [B, 1, T, d]}, attached to {@code
     *     positions}' manager
     */
    public NDList cosSin(NDArray positions) {
        NDArray freqs = positions.getManager().create(invFreq);
        NDArray angles =
                positions.toType(DataType.FLOAT32, false).expandDims(-1).mul(freqs); // [B, T, d/2]
        NDArray full = NDArrays.concat(new NDList(angles, angles), -1).expandDims(1);
        return new NDList(full.cos(), full.sin());
    }

    /**
     * Rotates queries or keys.
     *
     * @param x {@code [B, heads, T, d]}
     * @param cos from {@link #cosSin(NDArray)}
     * @param sin from {@link #cosSin(NDArray)}
     * @return {@code x * cos + rotateHalf(x) * sin}
     */
    public static NDArray apply(NDArray x, NDArray cos, NDArray sin) {
        long half = x.getShape().getLastDimension() / 2;
        NDArray first = x.get("..., :{}", half);
        NDArray second = x.get("..., {}:", half);
        NDArray rotated = NDArrays.concat(new NDList(second.neg(), first), -1);
        return x.mul(cos).add(rotated.mul(sin));
    }
}
