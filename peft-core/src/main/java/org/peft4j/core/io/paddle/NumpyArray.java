package org.peft4j.core.io.paddle;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.peft4j.core.io.NativeArrays;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A numpy array as a pickle holds it: a dtype ({@code <f4}, {@code <f2}, {@code <u2}, ...), a
 * shape and its C-ordered bytes. Paddle pickles bfloat16 tensors as {@code uint16} arrays of the
 * same bits, so {@link #toNDArray} reads {@code u2} as bfloat16 widened to float32.
 */
public final class NumpyArray {

    private final char kind;
    private final int itemSize;
    private final ByteOrder order;
    private final long[] shape;
    private final byte[] data;

    NumpyArray(char kind, int itemSize, ByteOrder order, long[] shape, byte[] data) {
        this.kind = kind;
        this.itemSize = itemSize;
        this.order = order;
        this.shape = shape.clone();
        this.data = data;
    }

    /**
     * Returns numpy's name of the element type, such as {@code "f4"} or {@code "u2"}.
     *
     * @return the kind letter followed by the item size in bytes
     */
    public String getDtype() {
        return "" + kind + itemSize;
    }

    /**
     * Returns the shape.
     *
     * @return the shape; {@code []} for a scalar
     */
    public Shape getShape() {
        return new Shape(shape);
    }

    /**
     * Copies the array into a new NDArray: {@code f4} as float32, {@code f2} as float16, {@code f8}
     * as float64 and {@code u2} (Paddle's bfloat16) as float32 ({@code bits << 16}), so that the
     * engine never sees a bfloat16 array.
     *
     * @param manager the manager that owns the result
     * @return an array of {@link #getShape()}
     * @throws IllegalArgumentException for any other dtype; the message names it
     * @throws IOException never in practice: the data is already in memory
     */
    public NDArray toNDArray(NDManager manager) throws IOException {
        ByteBuffer source = ByteBuffer.wrap(data).order(order);
        Shape s = getShape();
        String dtype = getDtype();
        switch (dtype) {
            case "f4":
                return NativeArrays.create(
                        manager, s, DataType.FLOAT32, 
                        t -> t.asFloatBuffer().put(source.asFloatBuffer()));
            case "f2":
                return NativeArrays.create(
                        manager,
                        s,
                        DataType.FLOAT16,
                        t -> t.asShortBuffer().put(source.asShortBuffer()));
            case "f8":
                return NativeArrays.create(
                        manager,
                        s,
                        DataType.FLOAT64,
                        t -> t.asDoubleBuffer().put(source.asDoubleBuffer()));
            case "u2":
                return NativeArrays.create(
                        manager,
                        s,
                        DataType.FLOAT32,
                        t -> {
                            while (source.hasRemaining()) {
                                t.putInt((source.getShort() & 0xFFFF) << 16);
                            }
                        });
            default:
                throw new IllegalArgumentException(
                        "numpy dtype "
                                + dtype
                                + " is not a weight type; Paddle state files hold float32,"
                                + " float16, float64 or bfloat16 (as uint16) arrays");
        }
    }

    @Override
    public String toString() {
        return "ndarray(" + getDtype() + ", " + Arrays.toString(shape) + ")";
    }
}
