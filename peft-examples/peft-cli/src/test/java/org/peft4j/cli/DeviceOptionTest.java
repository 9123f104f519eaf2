package org.peft4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.engine.Engine;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.testing.Fixtures;

import picocli.CommandLine;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code --device} on {@code finetune}, {@code generate}, {@code eval} and {@code bench}: a
 * malformed name is a usage error; a GPU that the engine does not see ends the command before it
 * reads a file, with one line on standard error; the CPU stays the default.
 */
class DeviceOptionTest {

    private static final String MALFORMED =
            "Invalid value for option '--device': \"%s\" is not a device; use cpu, gpu (the first"
                    + " GPU) or gpu:N (N = 0, 1, ...)";

    private static final List<String> COMMANDS = List.of("finetune", "generate", "eval", "bench");

    @Test
    void aMalformedDeviceIsAUsageErrorNamingTheOptionAndTheForms() {
        for (String command : COMMANDS) {
            for (String bad : new String[] {"tpu", "gpu:x", "gpu:-1"}) {
                String[] result = CliRunner.run(command, "--device", bad);
                String where = command + " --device " + bad + ": ";
                assertEquals("2", result[0], where + result[2]);
                assertEquals(
                        String.format(MALFORMED, bad),
                        result[2].lines().findFirst().orElse(""),
                        where + result[2]);
                assertFalse(result[2].contains("\tat "), where + "no stack trace: " + result[2]);
                assertEquals("", result[1], where + "nothing on standard output");
            }
        }
    }

    @Test
    void theCpuIsTheDefault() {
        String model = Fixtures.stories260K().toString();
        for (String[] args :
                new String[][] {
                    {"generate", "--model", model},
                    {"eval", "--model", model, "--data", "data.jsonl"},
                    {"finetune"},
                    {"bench"}
                }) {
            CommandLine line = new CommandLine(new Peft4j());
            CommandLine.ParseResult parsed = line.parseArgs(args);
            Object command = parsed.subcommand().commandSpec().userObject();
            DeviceOption device =
                    (DeviceOption) parsed.subcommand().commandSpec().mixins().get("device").userObject();
            assertEquals("cpu", device.name(), args[0]);
            assertTrue(command.getClass().getSimpleName().toLowerCase(java.util.Locale.ROOT).startsWith(args[0]));
        }
    }

    @Test
    void anExplicitCpuGeneratesAsTheDefaultDoes() {
        String model = Fixtures.stories260K().toString();
        String[] byDefault = CliRunner.run("generate", "--model", model, "--max-new-tokens", "20");
        String[] onCpu =
                CliRunner.run(
                        "generate", "--model", model, "--max-new-tokens", "20", "--device", "cpu");
        assertEquals("0", onCpu[0], onCpu[2]);
        assertEquals(byDefault[1], onCpu[1]);
    }

    @Test
    void aGpuThatTheEngineDoesNotSeeEndsEachCommandAtOnce(@TempDir Path dir) {
        assumeTrue(
                Engine.getInstance().getGpuCount() == 0,
                "this machine has a GPU; the refusal is for machines without one");
        Path out = dir.resolve("out");
        // paths that do not exist: the device is refused before any of them is read
        String[][] commands = {
            {"generate", "--model", "/no/such/model", "--device", "gpu"},
            {"eval", "--model", "/no/such/model", "--data", "/no/such.jsonl", "--device", "gpu:0"},
            {"finetune", "--output", out.toString(), "--device", "gpu"},
            {
                "finetune", "--model", "/no/such/model", "--train", "/no/such.jsonl",
                "--output", out.toString(), "--device", "gpu:1"
            },
            {"bench", "--config", "tiny", "--mode", "gemm", "--device", "gpu"},
            {"bench", "--config", "tiny", "--device", "gpu:3"}
        };
        for (String[] args : commands) {
            String device = args[args.length - 1];
            String where = String.join(" ", args) + ": ";
            String[] result = CliRunner.run(args);
            assertEquals("1", result[0], where + result[2]);
            assertEquals("", result[1], where + "nothing on standard output");
            List<String> ours =
                    result[2].lines().filter(l -> l.startsWith("peft4j ")).toList();
            assertEquals(1, ours.size(), where + result[2]);
            String line = ours.get(0);
            assertTrue(
                    line.startsWith(
                            "peft4j "
                                    + args[0]
                                    + ": device "
                                    + device
                                    + " asked for, but the PyTorch engine sees 0 GPUs: "),
                    where + line);
            assertTrue(line.contains("PYTORCH_LIBRARY_PATH="), where + line);
            assertTrue(line.contains("PYTORCH_VERSION=2.7.1"), where + line);
            assertTrue(line.contains("PYTORCH_FLAVOR=cu128"), where + line);
            assertTrue(line.contains("mvn -Pgpu"), where + line);
            assertFalse(result[2].contains("\tat "), where + "no stack trace: " + result[2]);
            assertFalse(result[2].contains("Exception"), where + result[2]);
            assertFalse(Files.exists(out), where + "nothing written");
        }
    }
}
