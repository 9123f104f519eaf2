package org.peft4j.cli;

import ai.djl.Device;

import org.peft4j.core.Devices;

import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Option;
import picocli.CommandLine.TypeConversionException;

/**
 * {@code --device}, shared by {@code finetune}, {@code generate}, {@code eval} and {@code bench}.
 *
 * <p>The name is checked in two steps: its form while the command line is parsed (a malformed
 * value is a usage error, exit status 2, before anything loads), and whether the engine sees that
 * GPU when the command starts ({@link #resolve()}; an error, exit status 1, before any file is
 * read). The default stays the CPU: peft4j.jar ships libtorch's CPU natives, and a GPU is used
 * only when asked for.
 */
final class DeviceOption {

    @Option(
            names = "--device",
            defaultValue = "cpu",
            converter = Form.class,
            description =
                    "cpu, gpu or gpu:N (default: ${DEFAULT-VALUE}); a GPU that the engine does not"
                            + " see is an error, never a run on the CPU.")
    String device;

    /** Creates the option; picocli calls this. */
    DeviceOption() {}

    /** Returns the name as given ({@code cpu}, {@code gpu} or {@code gpu:N}). */
    String name() {
        return device;
    }

    /**
     * Returns the device, for {@code NDManager.newBaseManager(Device)}.
     *
     * @return the device
     * @throws IllegalStateException if it is a GPU that the engine does not see; the message names
     *     the device, the GPUs seen, and how to give DJL a CUDA build
     */
    Device resolve() {
        return Devices.resolve(device);
    }

    /** Accepts the forms {@link Devices#parse(String)} reads, keeping the name as written. */
    static final class Form implements ITypeConverter<String> {

        /** Creates the converter; picocli calls this. */
        Form() {}

        /** {@inheritDoc} */
        @Override
        public String convert(String value) {
            try {
                Devices.parse(value);
            } catch (IllegalArgumentException e) {
                throw new TypeConversionException(e.getMessage());
            }
            return value;
        }
    }
}
