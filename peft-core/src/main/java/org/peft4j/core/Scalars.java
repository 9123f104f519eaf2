package org.peft4j.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;

/**
 * Arithmetic with constants that is safe under autograd.
 *
 * <p>DJL's {@code NDArray.mul(Number)} (and {@code div}, {@code add}, {@code muli}, ...) wraps the
 * constant in a 0-d tensor over a Java direct buffer, uses it, and closes it. When autograd saves
 * that tensor for the backward pass (as a product does), the buffer can be garbage-collected before
 * the backward pass reads it: the gradient is then computed from freed memory, and training
 * diverges at random. These helpers make the constant a tensor that the engine owns, which autograd
 * keeps alive as long as it needs it.
 */
public final class Scalars {

    private Scalars() {}

    /**
     * Creates an engine-owned 0-d tensor.
     *
     * @param like an array whose manager, device and type the constant takes
     * @param value the constant
     * @return a new 0-d array attached to {@code like}'s manager
     */
    public static NDArray of(NDArray like, double value) {
        return like.getManager().full(new Shape(), (float) value, like.getDataType());
    }

    /**
     * Multiplies by a constant.
     *
     * @param x the array
     * @param value the constant
     * @return {@code x * value}, a new array
     */
    public static NDArray mul(NDArray x, double value) {
        try (NDArray constant = of(x, value)) {
            return x.mul(constant);
        }
    }

    /**
     * Multiplies by a constant in place.
     *
     * @param x the array, changed
     * @param value the constant
     * @return {@code x}
     */
    public static NDArray muli(NDArray x, double value) {
        try (NDArray constant = of(x, value)) {
            return x.muli(constant);
        }
    }

    /**
     * Divides by a constant.
     *
     * @param x the array
     * @param value the constant
     * @return {@code x / value}, a new array
     */
    public static NDArray div(NDArray x, double value) {
        try (NDArray constant = of(x, value)) {
            return x.div(constant);
        }
    }

    /**
     * Adds a constant.
     *
     * @param x the array
     * @param value the constant
     * @return {@code x + value}, a new array
     */
    public static NDArray add(NDArray x, double value) {
        try (NDArray constant = of(x, value)) {
            return x.add(constant);
        }
    }
}
