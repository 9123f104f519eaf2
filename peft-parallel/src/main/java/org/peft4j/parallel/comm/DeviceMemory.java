package org.peft4j.parallel.comm;

import ai.djl.ndarray.NDArray;
import ai.djl.util.NativeResource;

import com.sun.jna.Native;
import com.sun.jna.Pointer;

import org.peft4j.core.io.NativeArrays;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;

/**
 * The address of a tensor's memory on its device, for NCCL: DJL's PyTorch engine has a native call
 * that wraps {@code data_ptr()} of any contiguous tensor, CUDA included, in a direct buffer
 * ({@code PyTorchLibrary.torchDirectByteBuffer}); its public {@code toByteBuffer} copies CUDA
 * tensors to the host instead, so the call is reached by reflection. The address is never read
 * from Java. A non-contiguous tensor is copied into contiguous memory first and written back on
 * {@link #close()}.
 */
final class DeviceMemory implements AutoCloseable {

    private static final String LIBRARY = "ai.djl.pytorch.jni.PyTorchLibrary";

    private final NDArray target;
    private final NDArray contiguous;
    private final Pointer pointer;
    private final boolean writeBack;

    private DeviceMemory(NDArray target, NDArray contiguous, Pointer pointer, boolean writeBack) {
        this.target = target;
        this.contiguous = contiguous;
        this.pointer = pointer;
        this.writeBack = writeBack;
    }

    /**
     * Exposes a tensor's device memory.
     *
     * @param array a tensor of DJL's PyTorch engine
     * @param writeBack whether the collective changes it
     * @return the memory, to be closed after the collective
     * @throws IllegalArgumentException if the tensor is not a PyTorch engine tensor
     * @throws IllegalStateException if this DJL version lacks the native call
     */
    static DeviceMemory of(NDArray array, boolean writeBack) {
        if (isContiguous(array)) {
            return new DeviceMemory(array, null, address(array), false);
        }
        NDArray copy = NativeArrays.copyOf(array);
        return new DeviceMemory(array, copy, address(copy), writeBack);
    }

    /**
     * Returns the device address.
     *
     * @return the pointer
     */
    Pointer pointer() {
        return pointer;
    }

    /** Writes a contiguous copy back into the tensor and frees it. */
    @Override
    public void close() {
        if (contiguous != null) {
            if (writeBack) {
                NativeArrays.copyInto(target, contiguous);
            }
            contiguous.close();
        }
    }

    private static long handle(NDArray array) {
        if (!(array instanceof NativeResource)
                || !"PyTorch".equals(array.getManager().getEngine().getEngineName())) {
            throw new IllegalArgumentException(
                    "NCCL collectives need tensors of DJL's PyTorch engine, got a "
                            + array.getClass().getName());
        }
        return (Long) ((NativeResource<?>) array).getHandle();
    }

    private static boolean isContiguous(NDArray array) {
        return (Boolean) call("torchIsContiguous", handle(array));
    }

    private static Pointer address(NDArray array) {
        ByteBuffer buffer = (ByteBuffer) call("torchDirectByteBuffer", handle(array));
        return Native.getDirectBufferPointer(buffer);
    }

    private static Object call(String name, long handle) {
        if (Engine.FAILURE != null) {
            throw new IllegalStateException(
                    "cannot reach the native calls of "
                            + LIBRARY
                            + " that give a tensor's device address; peft4j was built against"
                            + " DJL 0.36",
                    Engine.FAILURE);
        }
        try {
            Method method =
                    "torchIsContiguous".equals(name) ? Engine.IS_CONTIGUOUS : Engine.DIRECT_BUFFER;
            return method.invoke(Engine.LIB, handle);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(LIBRARY + "." + name + " failed", e);
        }
    }

    /** The engine's native calls, looked up once. */
    private static final class Engine {
        static final Object LIB;
        static final Method IS_CONTIGUOUS;
        static final Method DIRECT_BUFFER;
        static final Exception FAILURE;

        static {
            Object lib = null;
            Method contiguous = null;
            Method buffer = null;
            Exception failure = null;
            try {
                Class<?> library = Class.forName(LIBRARY);
                Field instance = library.getDeclaredField("LIB");
                instance.setAccessible(true);
                lib = instance.get(null);
                contiguous = library.getDeclaredMethod("torchIsContiguous", long.class);
                contiguous.setAccessible(true);
                buffer = library.getDeclaredMethod("torchDirectByteBuffer", long.class);
                buffer.setAccessible(true);
            } catch (ReflectiveOperationException | RuntimeException e) {
                failure = e;
            }
            LIB = lib;
            IS_CONTIGUOUS = contiguous;
            DIRECT_BUFFER = buffer;
            FAILURE = failure;
        }

        private Engine() {}
    }
}
