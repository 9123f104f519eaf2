package org.peft4j.parallel.comm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.api.Test;

import java.util.List;

/**
 * The NCCL backend on a machine without a GPU: against a recording stand-in for NCCL and CUDA, and,
 * for real, its failure to load.
 */
class NcclCommunicatorTest {

    @Test
    void withoutNcclTheMessageSaysWhatToInstall() {
        String previous = System.getProperty("peft4j.nccl.library");
        System.setProperty("peft4j.nccl.library", "/nonexistent/libnccl.so.2");
        try {
            IllegalStateException error =
                    assertThrows(
                            IllegalStateException.class,
                            () -> NcclCommunicator.create(SingleProcess.INSTANCE, 0));
            String message = error.getMessage();
            assertTrue(message.contains("libnccl") || message.contains("libcudart"), message);
            assertTrue(message.contains("MpiCommunicator"), message);
        } finally {
            if (previous == null) {
                System.clearProperty("peft4j.nccl.library");
            } else {
                System.setProperty("peft4j.nccl.library", previous);
            }
        }
    }

    @Test
    void rankZeroCreatesTheIdAndEveryRankInitialisesWithIt() {
        RecordingNccl nccl = new RecordingNccl();
        NcclCommunicator comm = NcclCommunicator.create(SingleProcess.INSTANCE, 0, nccl, nccl);
        assertEquals(
                List.of("cudaSetDevice(0)", "ncclGetUniqueId", "ncclCommInitRank(1, 0)"),
                nccl.calls);
        assertArrayEquals(nccl.uniqueId, nccl.receivedId.bytes());
        assertEquals(0, comm.getRank());
        assertEquals(1, comm.getWorldSize());
        assertEquals(0, comm.getDevice());
        comm.close();
        comm.close();
        assertEquals("ncclCommDestroy(" + 0xC0FFEE + ')', nccl.calls.get(3));
        assertEquals(4, nccl.calls.size(), "closing twice destroys once");
    }

    @Test
    void noDeviceOrAMissingOneFailsClearly() {
        RecordingNccl nccl = new RecordingNccl();
        nccl.devices = 0;
        IllegalStateException none =
                assertThrows(
                        IllegalStateException.class,
                        () -> NcclCommunicator.create(SingleProcess.INSTANCE, 0, nccl, nccl));
        assertTrue(none.getMessage().contains("none is visible"), none.getMessage());
        nccl.devices = 2;
        IllegalArgumentException missing =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> NcclCommunicator.create(SingleProcess.INSTANCE, 2, nccl, nccl));
        assertTrue(missing.getMessage().contains("2 CUDA devices"), missing.getMessage());
    }

    @Test
    void ncclErrorsNameTheCallAndNcclsReason() {
        RecordingNccl nccl = new RecordingNccl();
        nccl.initResult = 5;
        IllegalStateException error =
                assertThrows(
                        IllegalStateException.class,
                        () -> NcclCommunicator.create(SingleProcess.INSTANCE, 0, nccl, nccl));
        assertTrue(error.getMessage().contains("ncclCommInitRank"), error.getMessage());
        assertTrue(error.getMessage().contains("stand-in error 5"), error.getMessage());
    }

    @Test
    void cpuTensorsAreRefusedBeforeAnyNcclCall() {
        RecordingNccl nccl = new RecordingNccl();
        NcclCommunicator comm = NcclCommunicator.create(SingleProcess.INSTANCE, 0, nccl, nccl);
        int before = nccl.calls.size();
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray cpu = manager.zeros(new Shape(4));
            IllegalArgumentException error =
                    assertThrows(IllegalArgumentException.class, () -> comm.allReduceSum(cpu));
            assertTrue(error.getMessage().contains("CUDA tensors"), error.getMessage());
            assertThrows(IllegalArgumentException.class, () -> comm.allGather(cpu, 0));
            assertThrows(IllegalArgumentException.class, () -> comm.broadcast(cpu, 0));
        }
        assertEquals(before, nccl.calls.size());
        comm.close();
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray cpu = manager.zeros(new Shape(4));
            assertThrows(IllegalStateException.class, () -> comm.allReduceSum(cpu));
        }
    }

    @Test
    void typesMapToNcclsAndBooleansCannotBeSummed() {
        assertEquals(7, NcclCommunicator.type(DataType.FLOAT32, true));
        assertEquals(6, NcclCommunicator.type(DataType.FLOAT16, true));
        assertEquals(8, NcclCommunicator.type(DataType.FLOAT64, true));
        assertEquals(2, NcclCommunicator.type(DataType.INT32, true));
        assertEquals(4, NcclCommunicator.type(DataType.INT64, true));
        assertEquals(1, NcclCommunicator.type(DataType.BOOLEAN, false));
        assertThrows(
                IllegalArgumentException.class,
                () -> NcclCommunicator.type(DataType.BOOLEAN, true));
        assertThrows(
                IllegalArgumentException.class,
                () -> NcclCommunicator.type(DataType.BFLOAT16, false));
    }

    @Test
    void splitMakesACommunicatorOfTheSubgroup() {
        RecordingNccl nccl = new RecordingNccl();
        NcclCommunicator comm = NcclCommunicator.create(SingleProcess.INSTANCE, 0, nccl, nccl);
        try (Communicator sub = comm.split(3, 1)) {
            assertEquals(1, sub.getWorldSize());
            assertTrue(nccl.calls.contains("ncclCommSplit(3, 1)"));
        }
        assertTrue(nccl.calls.contains("ncclCommDestroy(" + 0xBEEF + ')'));
    }
}
