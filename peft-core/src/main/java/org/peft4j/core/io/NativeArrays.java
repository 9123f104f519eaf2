package org.peft4j.core.io;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Moves bytes between files and native arrays without a copy on the Java heap.
 *
 * <p>On engines where {@link NDArray#toByteBuffer(boolean) toByteBuffer(true)} returns a view of
 * the array's own memory (DJL's PyTorch engine does for a contiguous CPU tensor), an array is
 * allocated by the engine and filled through that view, so the engine owns the memory and the data
 * is copied once. Whether the view aliases is probed once per engine and device, never assumed.
 */
public final class NativeArrays {

    private static final Map<String, Boolean> ALIASING = new ConcurrentHashMap<>();

    private NativeArrays() {}

    /** Fills a little-endian byte buffer of known size with an array's future content. */
    @FunctionalInterface
    public interface Filler {

        /**
         * Writes exactly {@code buffer.remaining()} bytes into the buffer.
         *
         * @param buffer a little-endian buffer positioned at 0
         * @throws java.io.IOException if the source cannot be read
         */
        void fill(ByteBuffer buffer) throws java.io.IOException;
    }

    /**
     * Creates an array of the given shape and type whose bytes the filler writes.
     *
     * @param manager the manager that owns the returned array
     * @param shape the array's shape
     * @param type the array's type; never bfloat16
     * @param filler writes the array's content in little-endian order
     * @return a new array attached to {@code manager}
     * @throws java.io.IOException if the filler fails; no array is then left behind
     */
    public static NDArray create(NDManager manager, Shape shape, DataType type, Filler filler)
            throws java.io.IOException {
        long bytes = shape.size() * type.getNumOfBytes();
        if (bytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(
                    "a single array of shape "
                            + shape
                            + " and type "
                            + type
                            + " exceeds 2 GiB, the largest buffer Java can address");
        }
        Device device = manager.getDevice();
        if (aliases(manager)) {
            NDArray array = manager.create(shape, type);
            try {
                ByteBuffer view = array.toByteBuffer(true).order(ByteOrder.LITTLE_ENDIAN);
                view.clear();
                filler.fill(view);
                return array;
            } catch (java.io.IOException | RuntimeException e) {
                array.close();
                throw e;
            }
        }
        ByteBuffer buffer = ByteBuffer.allocateDirect((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
        filler.fill(buffer);
        buffer.rewind();
        try (NDManager cpu = manager.newSubManager(Device.cpu())) {
            NDArray staged = cpu.create(buffer, shape, type);
            NDArray result = manager.create(shape, type);
            copyInto(result, device.equals(Device.cpu()) ? staged : staged.toDevice(device, true));
            return result;
        }
    }

    /**
     * Copies an array into new memory that the engine owns.
     *
     * <p>DJL's {@code duplicate()} and {@code toType(sameType, true)} can hand back memory backed
     * by a Java buffer or the very same storage; this always copies, into an engine allocation.
     *
     * @param array the array to copy
     * @return a new array attached to {@code array}'s manager
     */
    public static NDArray copyOf(NDArray array) {
        NDArray copy = array.getManager().create(array.getShape(), array.getDataType());
        copyInto(copy, array);
        return copy;
    }

    /**
     * Copies the values of {@code source} into {@code target} in place, so that every holder of
     * {@code target} (a {@link ai.djl.nn.Parameter}, a gradient tape) sees the new values.
     *
     * @param target the array to overwrite
     * @param source values of the same shape; converted to the target's type when it differs
     * @throws IllegalArgumentException if the shapes differ
     */
    public static void copyInto(NDArray target, NDArray source) {
        if (!target.getShape().equals(source.getShape())) {
            throw new IllegalArgumentException(
                    "cannot copy an array of shape "
                            + source.getShape()
                            + " into one of shape "
                            + target.getShape());
        }
        if (source.getDataType() != target.getDataType()) {
            try (NDArray converted = source.toType(target.getDataType(), true)) {
                target.set(new NDIndex("..."), converted);
            }
        } else {
            target.set(new NDIndex("..."), source);
        }
    }

    /**
     * Returns the little-endian bytes of an array: a view of its memory where the engine allows
     * one, otherwise a copy.
     *
     * @param array a dense array
     * @return its bytes, positioned at 0
     */
    public static ByteBuffer bytesOf(NDArray array) {
        return array.toByteBuffer(true).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static boolean aliases(NDManager manager) {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            return false;
        }
        String key = manager.getEngine().getEngineName() + '/' + manager.getDevice();
        return ALIASING.computeIfAbsent(key, k -> probe(manager));
    }

    private static boolean probe(NDManager manager) {
        try (NDManager scratch = manager.newSubManager()) {
            NDArray array = scratch.zeros(new Shape(2), DataType.FLOAT32);
            ByteBuffer view = array.toByteBuffer(true);
            if (!view.isDirect() || view.isReadOnly()) {
                return false;
            }
            view.order(ByteOrder.nativeOrder()).putFloat(4, 42f);
            return array.toFloatArray()[1] == 42f;
        }
    }
}
