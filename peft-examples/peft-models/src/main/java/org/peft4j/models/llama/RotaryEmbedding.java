package org.peft4j.models.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;

import org.peft4j.core.Scalars;
import org.peft4j.core.io.NativeArrays;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.FloatBuffer;

/**
 * Rotary position embeddings (Su et al., 2021) in Hugging Face's rotate-half layout: the pairs
 * rotated together are {@code (x[i], x[i + d/2])}.
 *
 * <pre>
 *   invFreq[i] = 1 / theta^(2i / d)                     (then rope scaling, if any)
 *   angle[p, i] = p * invFreq[i mod d/2]                for i in [0, d)
 *   rope(x) = x * cos(angle) + rotateHalf(x) * sin(angle),   rotateHalf([a, b]) = [-b, a]
 * </pre>
 *
 * <p>The cosines and sines of every position are computed once into tables (grown when a sequence
 * outruns them, up to the model's positions and never beyond) and looked up per forward pass; {@code rotateHalf} is a product with a constant
 * signed permutation matrix. Both keep the per-step operation count low (generation runs a forward
 * pass per token) and give exactly the values of the direct formula.
 */
public final class RotaryEmbedding {

    private final float[] invFreq;
    private final int headDim;
    private final int maxPositions;
    private NDArray cosTable;
    private NDArray sinTable;
    private NDArray scaledCosTable;
    private NDArray scaledSinTable;
    private NDArray rotation;

    /**
     * Computes the inverse frequencies, for any number of positions.
     *
     * @param headDim the head size {@code d}, even
     * @param theta the rotary base
     * @param scaling rope scaling, or {@code null}
     */
    public RotaryEmbedding(int headDim, double theta, RopeScaling scaling) {
        this(headDim, theta, scaling, Integer.MAX_VALUE);
    }

    /**
     * Computes the inverse frequencies, for the positions of a model.
     *
     * @param headDim the head size {@code d}, even
     * @param theta the rotary base
     * @param scaling rope scaling, or {@code null}
     * @param maxPositions how many positions the tables hold at most ({@code
     *     max_position_embeddings}): a position beyond them is never silently extrapolated
     */
    public RotaryEmbedding(int headDim, double theta, RopeScaling scaling, int maxPositions) {
        this.headDim = headDim;
        this.maxPositions = maxPositions;
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
     * Looks up the rotation of given positions.
     *
     * @param positions position ids {@code [B, T]}, each below {@code limit}
     * @param limit one past the largest position id (cached plus new tokens), at most the
     *     positions this embedding was made for
     * @param owner the manager that keeps the tables (the model's weights' manager)
     * @return {@code cos}, {@code sin}, and both times {@code 1 / sqrt(d)} (for queries, whose
     *     attention scale this folds in), each {@code [B, 1, T, d]}, attached to {@code positions}'
     *     manager
     * @throws IllegalArgumentException if {@code limit} exceeds the positions
     */
    public NDList cosSin(NDArray positions, long limit, NDManager owner) {
        ensureTables(limit, owner);
        NDList out = new NDList(4);
        for (NDArray table : new NDArray[] {cosTable, sinTable, scaledCosTable, scaledSinTable}) {
            out.add(
                    positions
                            .getNDArrayInternal()
                            .embedding(positions, table, SparseFormat.DENSE)
                            .head()
                            .expandDims(1));
        }
        return out;
    }

    /**
     * Computes the rotation of given positions directly, without tables.
     *
     * @param positions position ids {@code [B, T]}
     * @return {@code cos} and {@code sin}, each {@code [B, 1, T, d]}, attached to {@code
     *     positions}' manager
     */
    public NDList cosSin(NDArray positions) {
        NDArray freqs = positions.getManager().create(invFreq);
        NDArray angles =
                positions.toType(DataType.FLOAT32, false).expandDims(-1).mul(freqs); // [B, T, d/2]
        NDArray full = angles.concat(angles, -1).expandDims(1);
        return new NDList(full.cos(), full.sin());
    }

    /**
     * Rotates queries or keys.
     *
     * @param x {@code [B, heads, T, d]}
     * @param cos from {@code cosSin}
     * @param sin from {@code cosSin}
     * @return {@code x * cos + rotateHalf(x) * sin}
     */
    public NDArray apply(NDArray x, NDArray cos, NDArray sin) {
        NDArray rotated = rotation == null ? rotateHalf(x) : x.matMul(rotation);
        return x.mul(cos).add(rotated.mul(sin));
    }

    /**
     * Returns {@code rotateHalf(x) = [-x2, x1]} along the last axis.
     *
     * @param x the array
     * @return the rotated copy
     */
    static NDArray rotateHalf(NDArray x) {
        long half = x.getShape().getLastDimension() / 2;
        NDArray first = x.get("..., :{}", half);
        NDArray second = x.get("..., {}:", half);
        return second.neg().concat(first, -1);
    }

    /**
     * Builds the signed permutation {@code R} with {@code x R = rotateHalf(x)}: {@code R[j + d/2,
     * j] = -1} and {@code R[j, j + d/2] = 1} for {@code j < d/2}. It is engine-owned memory, as
     * anything autograd may keep must be (see {@link org.peft4j.core.Scalars}).
     */
    private static NDArray rotationMatrix(NDManager owner, int d) {
        try {
            return NativeArrays.create(
                    owner,
                    new Shape(d, d),
                    DataType.FLOAT32,
                    buffer -> {
                        FloatBuffer values = buffer.asFloatBuffer();
                        for (int i = 0; i < d * d; i++) {
                            values.put(i, 0f);
                        }
                        for (int j = 0; j < d / 2; j++) {
                            values.put((j + d / 2) * d + j, -1f);
                            values.put(j * d + j + d / 2, 1f);
                        }
                    });
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private synchronized void ensureTables(long limit, NDManager owner) {
        if (cosTable != null && cosTable.getShape().get(0) >= limit) {
            return;
        }
        if (limit > maxPositions) {
            throw new IllegalArgumentException(
                    "position "
                            + (limit - 1)
                            + " asked for, but the rotary embedding has positions 0 to "
                            + (maxPositions - 1)
                            + " (max_position_embeddings "
                            + maxPositions
                            + ")");
        }
        // a table no longer than the model's positions: a position id past them (given
        // explicitly) fails in the lookup instead of reading an extrapolated angle
        long size =
                Math.min(
                        maxPositions, Math.max(2048, Long.highestOneBit(Math.max(1, limit - 1)) * 2));
        if (cosTable != null) {
            cosTable.close();
            sinTable.close();
            scaledCosTable.close();
            scaledSinTable.close();
        }
        NDArray positions = owner.arange(0, size, 1, DataType.INT64).reshape(1, size);
        NDList direct = cosSin(positions);
        cosTable = direct.get(0).reshape(size, headDim);
        sinTable = direct.get(1).reshape(size, headDim);
        scaledCosTable = Scalars.mul(cosTable, 1 / Math.sqrt(headDim));
        scaledSinTable = Scalars.mul(sinTable, 1 / Math.sqrt(headDim));
        if (rotation == null) {
            rotation = rotationMatrix(owner, headDim);
            NDScope.unregister(rotation);
        }
        // Arrays made inside a caller's NDScope would be closed with it; these outlive steps.
        NDScope.unregister(cosTable, sinTable, scaledCosTable, scaledSinTable);
    }
}
