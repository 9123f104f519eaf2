package org.peft4j.parallel.comm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import com.sun.jna.Native;

import org.junit.jupiter.api.Test;
import org.peft4j.core.io.NativeArrays;

/**
 * The engine call that gives NCCL a tensor's device address, checked on CPU tensors, where the
 * address can be compared with the host view's.
 */
class DeviceMemoryTest {

    @Test
    void contiguousTensorsExposeTheirOwnMemory() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray array = manager.arange(12f).reshape(3, 4);
            try (DeviceMemory memory = DeviceMemory.of(array, true)) {
                assertEquals(
                        Native.getDirectBufferPointer(NativeArrays.bytesOf(array)),
                        memory.pointer());
                memory.pointer().setFloat(4, 42f); // what a collective writing element 1 does
            }
            assertEquals(42f, array.toFloatArray()[1]);
        }
    }

    @Test
    void nonContiguousTensorsAreCopiedAndWrittenBack() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray base = manager.arange(12f).reshape(3, 4);
            NDArray view = base.transpose();
            try (DeviceMemory memory = DeviceMemory.of(view, true)) {
                assertNotEquals(
                        Native.getDirectBufferPointer(NativeArrays.bytesOf(base)),
                        memory.pointer());
                memory.pointer().setFloat(0, -1f);
            }
            float[] expected = manager.arange(12f).reshape(3, 4).toFloatArray();
            expected[0] = -1f;
            assertArrayEquals(expected, base.toFloatArray());
            assertEquals(new Shape(4, 3), view.getShape());
        }
    }
}
