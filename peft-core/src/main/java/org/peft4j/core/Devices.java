package org.peft4j.core;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.engine.StandardCapabilities;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Chooses the device that peft4j computes on, and refuses a GPU that the engine does not see.
 *
 * <p>Models, adapters and batches live on the device of the {@link ai.djl.ndarray.NDManager} that
 * creates them, so a device is chosen once, for the base manager:
 *
 * <pre>{@code
 * try (NDManager manager = NDManager.newBaseManager(Devices.resolve("gpu"))) {
 *     LlamaForCausalLM llama = LlamaForCausalLM.fromPretrained(checkpoint, manager);
 * }
 * }</pre>
 *
 * <p>The check matters because DJL falls back to the CPU without an error: it loads whichever
 * libtorch it finds (the CPU natives on the class path, else the build for the CUDA runtime it
 * detects, else the CPU build), and its default device is then the CPU. Code that names no device
 * runs on the CPU, looking like a slow GPU; code that names a GPU that libtorch cannot use fails
 * deep inside its first operation. Here a GPU that the engine does not see is an error at once,
 * saying what to do.
 */
public final class Devices {

    /** The names {@link #parse(String)} accepts, for messages. */
    public static final String FORMS = "cpu, gpu (the first GPU) or gpu:N (N = 0, 1, ...)";

    /**
     * The one CUDA build that DJL 0.36's PyTorch engine loads as shipped: pytorch-jni 2.7.1-0.36.0
     * holds DJL's JNI library for {@code cpu} and {@code cu128} only, and DJL looks no further for
     * it when that jar is on the class path (LibUtils.findJniLibrary).
     */
    static final String CUDA_FLAVOR = "cu128";

    /** The libtorch release that DJL 0.36's PyTorch engine is built against. */
    static final String LIBTORCH_VERSION = "2.7.1";

    private static final Pattern GPU = Pattern.compile("gpu(?::(\\d{1,9}))?");

    private Devices() {}

    /**
     * Parses a device name without asking the engine anything.
     *
     * @param name {@code cpu}, {@code gpu} (the GPU of index 0) or {@code gpu:N}
     * @return {@link Device#cpu()} or {@link Device#gpu(int)}
     * @throws IllegalArgumentException if the name is none of these; the message quotes it and
     *     lists the accepted forms
     */
    public static Device parse(String name) {
        if ("cpu".equals(name)) {
            return Device.cpu();
        }
        Matcher gpu = name == null ? null : GPU.matcher(name);
        if (gpu == null || !gpu.matches()) {
            throw new IllegalArgumentException(
                    '"' + String.valueOf(name) + "\" is not a device; use " + FORMS);
        }
        return gpu.group(1) == null ? Device.gpu() : Device.gpu(Integer.parseInt(gpu.group(1)));
    }

    /**
     * Parses a device name and checks that the default engine can compute on it.
     *
     * @param name {@code cpu}, {@code gpu} or {@code gpu:N}, as {@link #parse(String)}
     * @return the device
     * @throws IllegalArgumentException if the name is malformed
     * @throws IllegalStateException if it names a GPU that the engine does not see; the message
     *     names the device, says how many GPUs the engine sees and how to give DJL a CUDA build
     */
    public static Device resolve(String name) {
        return require(parse(name), name);
    }

    /**
     * Checks that the default engine can compute on a device. The CPU is always there and is
     * returned without starting the engine; a GPU must be one of those the engine sees.
     *
     * @param device the device
     * @return {@code device}
     * @throws IllegalStateException if it is a GPU that the engine does not see, as {@link
     *     #resolve(String)}
     * @throws IllegalArgumentException if it is a GPU without an index ({@code gpu(-1)})
     */
    public static Device require(Device device) {
        return require(device, nameOf(device));
    }

    /**
     * Returns a device's name in the form {@link #parse(String)} reads.
     *
     * @param device the device
     * @return {@code cpu}, {@code gpu:N}, or DJL's own name for other devices
     */
    public static String nameOf(Device device) {
        if (Device.Type.CPU.equals(device.getDeviceType())) {
            return "cpu";
        }
        if (device.isGpu()) {
            return "gpu:" + device.getDeviceId();
        }
        return device.toString();
    }

    private static Device require(Device device, String name) {
        if (!device.isGpu()) {
            return device;
        }
        Engine engine = Engine.getInstance();
        check(
                device,
                name,
                engine.getEngineName(),
                engine.hasCapability(StandardCapabilities.CUDA),
                engine.getGpuCount());
        return device;
    }

    /**
     * Refuses a GPU that an engine does not see.
     *
     * <p>DJL's count ({@link Engine#getGpuCount()}) is zero unless the engine reports the {@code
     * CUDA} capability, which the PyTorch engine does when libtorch's {@code
     * torch::cuda::is_available()} holds: a CUDA build that finds a device. It then counts the
     * devices through the system's CUDA runtime ({@code libcudart.so}, loaded by JNA), not through
     * libtorch's own copy, so the two can disagree.
     *
     * @param device a GPU
     * @param name the name it was asked for by, for the message
     * @param engine the engine's name
     * @param cudaAvailable whether the engine reports the CUDA capability
     * @param gpuCount how many GPUs the engine sees
     */
    static void check(
            Device device, String name, String engine, boolean cudaAvailable, int gpuCount) {
        int index = device.getDeviceId();
        if (index < 0) {
            throw new IllegalArgumentException(
                    "device " + device + " has no GPU index; use " + FORMS);
        }
        if (index < gpuCount) {
            return;
        }
        String asked =
                "device "
                        + name
                        + " asked for, but the "
                        + engine
                        + " engine sees "
                        + gpuCount
                        + (gpuCount == 1 ? " GPU" : " GPUs");
        if (gpuCount > 0) {
            throw new IllegalStateException(
                    asked
                            + ": use "
                            + (gpuCount == 1 ? "gpu:0" : "gpu:0 to gpu:" + (gpuCount - 1))
                            + ", or make more GPUs visible (CUDA_VISIBLE_DEVICES)");
        }
        if (!"PyTorch".equals(engine)) {
            throw new IllegalStateException(
                    asked + ": it reports no CUDA device; install the engine's CUDA build");
        }
        if (cudaAvailable) {
            throw new IllegalStateException(
                    asked
                            + ": libtorch finds a CUDA device, but DJL counts GPUs through the CUDA"
                            + " runtime libcudart.so, which it cannot load or which reports no"
                            + " device; put the directory of a CUDA 12 libcudart.so on"
                            + " LD_LIBRARY_PATH");
        }
        throw new IllegalStateException(
                asked
                        + ": the libtorch that DJL loaded is a CPU build, or a CUDA build that"
                        + " finds no device (check the driver: nvidia-smi). For a GPU, point DJL"
                        + " at a local libtorch "
                        + LIBTORCH_VERSION
                        + "+"
                        + CUDA_FLAVOR
                        + " (PYTORCH_LIBRARY_PATH=<libtorch>/lib PYTORCH_VERSION="
                        + LIBTORCH_VERSION
                        + " PYTORCH_FLAVOR="
                        + CUDA_FLAVOR
                        + "), or leave the CPU natives (pytorch-native-cpu) off the class path"
                        + " (peft4j's build: mvn -Pgpu) and let DJL download its CUDA build"
                        + " (PYTORCH_FLAVOR="
                        + CUDA_FLAVOR
                        + "); see docs/gpu.md");
    }
}
