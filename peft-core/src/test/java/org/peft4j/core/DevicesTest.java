package org.peft4j.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

import org.junit.jupiter.api.Test;

class DevicesTest {

    @Test
    void theThreeFormsParse() {
        assertEquals(Device.cpu(), Devices.parse("cpu"));
        assertEquals(Device.gpu(0), Devices.parse("gpu"));
        assertEquals(Device.gpu(0), Devices.parse("gpu:0"));
        assertEquals(Device.gpu(3), Devices.parse("gpu:3"));
    }

    @Test
    void anythingElseIsRefusedWithTheAcceptedForms() {
        for (String bad :
                new String[] {"tpu", "gpu:x", "gpu:-1", "gpu:", "gpu0", "cuda", "GPU", "cpu:0", ""}) {
            IllegalArgumentException e =
                    assertThrows(IllegalArgumentException.class, () -> Devices.parse(bad), bad);
            assertEquals(
                    '"' + bad + "\" is not a device; use cpu, gpu (the first GPU) or gpu:N (N = 0,"
                            + " 1, ...)",
                    e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> Devices.parse(null));
    }

    @Test
    void namesRoundTrip() {
        assertEquals("cpu", Devices.nameOf(Device.cpu()));
        assertEquals("gpu:2", Devices.nameOf(Device.gpu(2)));
        assertEquals(Device.gpu(2), Devices.parse(Devices.nameOf(Device.gpu(2))));
    }

    @Test
    void noCudaDeviceIsRefusedWithWhatToDo() {
        IllegalStateException e =
                assertThrows(
                        IllegalStateException.class,
                        () -> Devices.check(Device.gpu(0), "gpu", "PyTorch", false, 0));
        String message = e.getMessage();
        assertTrue(message.startsWith("device gpu asked for, but the PyTorch engine sees 0 GPUs: "));
        assertTrue(message.contains("a CPU build, or a CUDA build that finds no device"), message);
        assertTrue(message.contains("libtorch 2.7.1+cu128"), message);
        assertTrue(message.contains("PYTORCH_LIBRARY_PATH=<libtorch>/lib"), message);
        assertTrue(message.contains("PYTORCH_VERSION=2.7.1"), message);
        assertTrue(message.contains("PYTORCH_FLAVOR=cu128"), message);
        assertTrue(message.contains("mvn -Pgpu"), message);
        assertTrue(message.contains("docs/gpu.md"), message);
        assertFalse(message.contains("\n"), "one line: " + message);
    }

    @Test
    void aDeviceThatLibtorchSeesButDjlDoesNotCountIsRefusedNamingLibcudart() {
        IllegalStateException e =
                assertThrows(
                        IllegalStateException.class,
                        () -> Devices.check(Device.gpu(0), "gpu:0", "PyTorch", true, 0));
        assertEquals(
                "device gpu:0 asked for, but the PyTorch engine sees 0 GPUs: libtorch finds a CUDA"
                        + " device, but DJL counts GPUs through the CUDA runtime libcudart.so,"
                        + " which it cannot load or which reports no device; put the directory of"
                        + " a CUDA 12 libcudart.so on LD_LIBRARY_PATH",
                e.getMessage());
    }

    @Test
    void anIndexBeyondTheGpusSeenIsRefusedWithTheRange() {
        IllegalStateException two =
                assertThrows(
                        IllegalStateException.class,
                        () -> Devices.check(Device.gpu(2), "gpu:2", "PyTorch", true, 2));
        assertEquals(
                "device gpu:2 asked for, but the PyTorch engine sees 2 GPUs: use gpu:0 to gpu:1,"
                        + " or make more GPUs visible (CUDA_VISIBLE_DEVICES)",
                two.getMessage());
        IllegalStateException one =
                assertThrows(
                        IllegalStateException.class,
                        () -> Devices.check(Device.gpu(1), "gpu:1", "PyTorch", true, 1));
        assertTrue(one.getMessage().contains("sees 1 GPU: use gpu:0,"), one.getMessage());
    }

    @Test
    void aGpuThatIsSeenPasses() {
        Devices.check(Device.gpu(0), "gpu", "PyTorch", true, 1);
        Devices.check(Device.gpu(1), "gpu:1", "PyTorch", true, 2);
    }

    @Test
    void aGpuWithoutAnIndexIsRefused() {
        assertThrows(
                IllegalArgumentException.class,
                () -> Devices.check(Device.of("gpu", -1), "gpu", "PyTorch", true, 1));
    }

    @Test
    void otherEnginesAreToldToInstallTheirCudaBuild() {
        IllegalStateException e =
                assertThrows(
                        IllegalStateException.class,
                        () -> Devices.check(Device.gpu(0), "gpu", "OnnxRuntime", false, 0));
        assertEquals(
                "device gpu asked for, but the OnnxRuntime engine sees 0 GPUs: it reports no CUDA"
                        + " device; install the engine's CUDA build",
                e.getMessage());
    }

    @Test
    void theCpuResolvesAndHoldsArrays() {
        Device cpu = Devices.resolve("cpu");
        assertEquals(Device.cpu(), cpu);
        try (NDManager manager = NDManager.newBaseManager(cpu)) {
            NDArray array = manager.ones(new ai.djl.ndarray.types.Shape(2));
            assertEquals(Device.cpu(), array.getDevice());
        }
    }

    /** Against the engine this build runs on: refused without a GPU, accepted with one. */
    @Test
    void aGpuResolvesExactlyWhenTheEngineSeesOne() {
        int gpus = Engine.getInstance().getGpuCount();
        if (gpus == 0) {
            IllegalStateException e =
                    assertThrows(IllegalStateException.class, () -> Devices.resolve("gpu"));
            assertTrue(
                    e.getMessage().startsWith("device gpu asked for, but the PyTorch engine sees 0"),
                    e.getMessage());
            assertThrows(IllegalStateException.class, () -> Devices.require(Device.gpu(0)));
        } else {
            assertEquals(Device.gpu(0), Devices.resolve("gpu"));
            assertThrows(
                    IllegalStateException.class, () -> Devices.resolve("gpu:" + gpus));
        }
    }
}
