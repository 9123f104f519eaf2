package org.peft4j.parallel.comm;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

import com.sun.jna.Native;
import com.sun.jna.Pointer;

import org.peft4j.core.io.NativeArrays;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The host memory of an array, for a collective to read and write: the array's own memory when the
 * engine exposes it (a contiguous CPU tensor on DJL's PyTorch engine), otherwise a copy that {@link
 * #close()} writes back. No element is moved through Java.
 */
final class ArrayMemory implements AutoCloseable {

    private final NDArray array;
    private final ByteBuffer buffer;
    private final boolean aliased;
    private final boolean writeBack;

    private ArrayMemory(NDArray array, ByteBuffer buffer, boolean aliased, boolean writeBack) {
        this.array = array;
        this.buffer = buffer;
        this.aliased = aliased;
        this.writeBack = writeBack;
    }

    /**
     * Exposes an array's memory.
     *
     * @param array a dense array
     * @param writeBack whether the collective changes it (then a copy is written back on close)
     * @return the memory, to be closed after the collective
     */
    static ArrayMemory of(NDArray array, boolean writeBack) {
        ByteBuffer first = NativeArrays.bytesOf(array);
        if (first.isDirect() && !first.isReadOnly()) {
            // a contiguous tensor's view has one address; a non-contiguous one is copied anew
            ByteBuffer second = NativeArrays.bytesOf(array);
            if (second.isDirect()
                    && Native.getDirectBufferPointer(first)
                            .equals(Native.getDirectBufferPointer(second))) {
                return new ArrayMemory(array, first, true, writeBack);
            }
        }
        ByteBuffer copy =
                ByteBuffer.allocateDirect(first.remaining()).order(ByteOrder.LITTLE_ENDIAN);
        copy.put(first.duplicate());
        copy.clear();
        return new ArrayMemory(array, copy, false, writeBack);
    }

    /**
     * Returns the address of the memory.
     *
     * @return a native pointer
     */
    Pointer pointer() {
        return Native.getDirectBufferPointer(buffer);
    }

    /**
     * Returns the size in bytes.
     *
     * @return the byte length
     */
    long bytes() {
        return buffer.capacity();
    }

    /** Writes a copied buffer back into the array when the collective changed it. */
    @Override
    public void close() {
        if (aliased || !writeBack) {
            return;
        }
        try (NDManager scratch = array.getManager().newSubManager()) {
            NDArray staged = scratch.create(buffer, array.getShape(), array.getDataType());
            NativeArrays.copyInto(array, staged.toDevice(array.getDevice(), false));
        }
    }
}
