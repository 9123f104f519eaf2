package org.peft4j.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;

/**
 * Merging as a pure function of weights, testable without a model.
 *
 * <p>{@code W' = W + s B A} with {@code W: [out, in]}, {@code A: [r, in]}, {@code B: [out, r]}.
 */
public final class LoRAWeights {

    private LoRAWeights() {}

    /**
     * Computes {@code s B A} in the base weight's type.
     *
     * @param loraA {@code A: [r, in]}
     * @param loraB {@code B: [out, r]}
     * @param scaling {@code s}
     * @param type the type of the base weight
     * @return a new array {@code [out, in]} attached to {@code loraA}'s manager; the caller closes
     *     it
     */
    public static NDArray delta(NDArray loraA, NDArray loraB, double scaling, DataType type) {
        NDArray a = loraA.getDataType() == type ? loraA : loraA.toType(type, true);
        NDArray b = loraB.getDataType() == type ? loraB : loraB.toType(type, true);
        try {
            NDArray product = b.matMul(a);
            return product.muli((float) scaling);
        } finally {
            if (a != loraA) {
                a.close();
            }
            if (b != loraB) {
                b.close();
            }
        }
    }

    /**
     * Returns {@code W + s B A} as a new array, leaving {@code W} alone.
     *
     * @param weight {@code W: [out, in]}
     * @param loraA {@code A: [r, in]}
     * @param loraB {@code B: [out, r]}
     * @param scaling {@code s}
     * @return the merged weight, attached to {@code weight}'s manager
     */
    public static NDArray merged(NDArray weight, NDArray loraA, NDArray loraB, double scaling) {
        try (NDArray delta = delta(loraA, loraB, scaling, weight.getDataType())) {
            return weight.add(delta);
        }
    }

    /**
     * Tests whether every element of an array is finite.
     *
     * @param array a floating-point array
     * @return false if any element is NaN or infinite
     */
    public static boolean isFinite(NDArray array) {
        try (NDArray nan = array.isNaN();
                NDArray inf = array.isInfinite();
                NDArray bad = nan.logicalOr(inf);
                NDArray any = bad.any()) {
            return !any.getBoolean();
        }
    }
}
