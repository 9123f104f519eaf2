package org.peft4j.cli;

import ai.djl.Device;

import com.fasterxml.jackson.databind.ObjectMapper;

import org.peft4j.cli.bench.BenchConfig;
import org.peft4j.cli.bench.Benchmark;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code peft4j bench}: one JSON line per mode. With {@code --mode}, that mode runs in this JVM;
 * without, every mode runs in a JVM of its own (so that each peak memory is its own), started with
 * a bounded young generation ({@code -Xmn64m}). A step allocates little on the Java heap (about 1.4
 * MB of array handles), but with the default young generation the heap becomes resident page by
 * page over the first ~150 steps, which a long run would report as growth.
 */
@Command(
        name = "bench",
        mixinStandardHelpOptions = true,
        description = {
            "Benchmark inference, LoRA, prefix and full fine-tuning, and generation.",
            "Modes: gemm, infer, merged, unmerged, mixed, lora, full, prefix, generate."
        })
public final class BenchCommand implements Callable<Integer> {

    private static final String BOUNDED_YOUNG_GENERATION = "-Xmn64m";

    @Option(names = "--mode", description = "One mode; default: all, one JVM each.")
    String mode;

    @Mixin DeviceOption device;

    @Option(
            names = "--config",
            defaultValue = "small",
            description =
                    "small or medium; tiny runs every mode in seconds, a check rather than a"
                            + " measurement (default: ${DEFAULT-VALUE}).")
    String config;

    @Option(
            names = "--timed-steps",
            defaultValue = "5",
            converter = Ranges.AtLeast5.class,
            description =
                    "Timed steps, median reported; merged and unmerged time at least 21 pairs with"
                            + " the base model, after at least 10 (default: ${DEFAULT-VALUE}).")
    int timedSteps;

    @Option(
            names = "--warmup-steps",
            defaultValue = "2",
            converter = Ranges.AtLeast0.class,
            description =
                    "Untimed steps first; merged, unmerged and mixed warm up for at least 10 pairs,"
                            + " generate for at least 40 generations (default: ${DEFAULT-VALUE}).")
    int warmupSteps;

    @Option(
            names = "--steps",
            defaultValue = "0",
            converter = Ranges.AtLeast0.class,
            description =
                    "Training modes: a long run of N steps reporting resident memory after step 50"
                            + " and at the end.")
    int steps;

    /** Creates the command; picocli calls this. */
    public BenchCommand() {}

    /** {@inheritDoc} */
    @Override
    public Integer call() throws Exception {
        BenchConfig size = BenchConfig.of(config);
        Device on = device.resolve(); // here, not once in each of the JVMs below
        if (mode != null) {
            Benchmark benchmark = new Benchmark(size, on, timedSteps, warmupSteps, steps);
            System.out.println(new ObjectMapper().writeValueAsString(benchmark.run(mode)));
            return 0;
        }
        int status = 0;
        for (String each : Benchmark.MODES) {
            List<String> command = new ArrayList<>();
            command.add(Paths.get(System.getProperty("java.home"), "bin", "java").toString());
            // A bounded young generation: the heap's resident part stops growing after the first
            // collections, so that memory readings show the engine's memory, not heap warm-up.
            command.add(BOUNDED_YOUNG_GENERATION);
            command.add("-cp");
            command.add(System.getProperty("java.class.path"));
            command.add(Peft4j.class.getName());
            command.addAll(
                    List.of(
                            "bench",
                            "--mode",
                            each,
                            "--config",
                            config,
                            "--device",
                            device.name(),
                            "--timed-steps",
                            Integer.toString(timedSteps),
                            "--warmup-steps",
                            Integer.toString(warmupSteps),
                            "--steps",
                            Integer.toString(steps)));
            Process process =
                    new ProcessBuilder(command)
                            .redirectError(ProcessBuilder.Redirect.INHERIT)
                            .start();
            try (BufferedReader out =
                    new BufferedReader(
                            new InputStreamReader(
                                    process.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = out.readLine()) != null) {
                    System.out.println(line);
                }
            }
            status |= process.waitFor();
        }
        return status;
    }
}
