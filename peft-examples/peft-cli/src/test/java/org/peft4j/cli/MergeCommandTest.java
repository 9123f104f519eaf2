package org.peft4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.ndarray.NDManager;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.io.WriteSteps;
import org.peft4j.core.testing.Crashes;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.lora.LoRAModel;
import org.peft4j.models.llama.LlamaForCausalLM;

import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * {@code peft4j merge} writes nothing the user did not ask to overwrite: a non-empty {@code
 * --output} only with {@code --overwrite}, and then as a whole; never over {@code --model} or
 * {@code --adapter}. A bad {@code --output} or a full disk ends in one line that says what is
 * wrong.
 */
class MergeCommandTest {

    @TempDir static Path shared;

    /** A private copy of stories260K (files 0600) and a LoRA adapter trained on nothing. */
    private static Path model;

    private static Path adapter;

    @BeforeAll
    static void setUp() throws IOException {
        model = Files.createDirectories(shared.resolve("stories260K"));
        try (Stream<Path> files = Files.list(Fixtures.stories260K())) {
            for (Path file : files.toList()) {
                Path copy = Files.copy(file, model.resolve(file.getFileName().toString()));
                Files.setPosixFilePermissions(copy, PosixFilePermissions.fromString("rw-------"));
            }
        }
        adapter = shared.resolve("adapter");
        try (NDManager manager = NDManager.newBaseManager()) {
            LoRAModel lora =
                    new LoRAModel(
                            LlamaForCausalLM.fromPretrained(model, manager),
                            LoRAConfig.builder()
                                    .setTargetModules("q_proj", "v_proj")
                                    .optR(4)
                                    .optLoraAlpha(8)
                                    .build());
            TestAdapters.perturbB(lora, manager, 3, 0.3f).savePretrained(adapter);
        }
    }

    private static String[] merge(Path output, String... more) {
        List<String> args =
                new java.util.ArrayList<>(
                        List.of(
                                "merge",
                                "--model",
                                model.toString(),
                                "--adapter",
                                adapter.toString(),
                                "--output",
                                output.toString()));
        args.addAll(List.of(more));
        return CliRunner.run(args.toArray(new String[0]));
    }

    private static List<String> names(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void aNewOutputGetsTheCheckpointWithTheUmasksPermissionsNotTheSources(@TempDir Path dir)
            throws IOException {
        Path probe = dir.resolve("probe");
        new FileOutputStream(probe.toFile()).close();
        String mode = PosixFilePermissions.toString(Files.getPosixFilePermissions(probe));
        assumeTrue(!mode.equals("rw-------"), "under umask 077 the sources' mode is the umask's");
        Path output = dir.resolve("merged");
        String[] result = merge(output);
        assertEquals("0", result[0], result[2]);
        assertEquals(List.of("config.json", "model.safetensors", "tokenizer.bin"), names(output));
        for (String name : names(output)) {
            assertEquals(
                    mode,
                    PosixFilePermissions.toString(
                            Files.getPosixFilePermissions(output.resolve(name))),
                    name);
        }
        assertEquals(List.of(), Crashes.leftovers(output));
    }

    @Test
    void aNonEmptyOutputIsRefusedWithoutOverwriteAndReplacedAsAWholeWithIt(@TempDir Path dir)
            throws IOException {
        Path fresh = dir.resolve("fresh");
        assertEquals("0", merge(fresh)[0]);
        Path output = Files.createDirectories(dir.resolve("old-model"));
        try (Stream<Path> files = Files.list(model)) {
            for (Path file : files.toList()) {
                Files.copy(file, output.resolve(file.getFileName().toString()));
            }
        }
        Map<String, String> before = Crashes.snapshot(output);

        assertEquals(
                "peft4j merge: --output "
                        + output
                        + " is not empty (it holds config.json, model.safetensors, stories260K.bin,"
                        + " tokenizer.bin); give --overwrite to replace it as a whole, or choose a"
                        + " new or empty directory",
                CliRunner.error(merge(output)));
        assertEquals(before, Crashes.snapshot(output), "nothing written");

        String[] replaced = merge(output, "--overwrite");
        assertEquals("0", replaced[0], replaced[2]);
        // no stories260K.bin stays beside the merged model: the directory is the new one only
        assertEquals(Crashes.snapshot(fresh), Crashes.snapshot(output));
        assertEquals(List.of(), Crashes.leftovers(output));
    }

    @Test
    void theModelAndTheAdapterAreNeverWrittenOverEvenWithOverwrite(@TempDir Path dir)
            throws IOException {
        Map<String, String> modelFiles = Crashes.snapshot(model);
        Map<String, String> adapterFiles = Crashes.snapshot(adapter);
        String refused =
                "; writing there would destroy the input (refused even with --overwrite): choose"
                        + " another directory";
        assertEquals(
                "peft4j merge: --output " + model + " is --model itself" + refused,
                CliRunner.error(merge(model, "--overwrite")));
        Path inside = model.resolve("merged");
        assertEquals(
                "peft4j merge: --output " + inside + " is inside --model " + model + refused,
                CliRunner.error(merge(inside, "--overwrite")));
        assertEquals(
                "peft4j merge: --output " + adapter + " is --adapter itself" + refused,
                CliRunner.error(merge(adapter, "--overwrite")));
        assertEquals(
                "peft4j merge: --output " + shared + " contains --model " + model + refused,
                CliRunner.error(merge(shared, "--overwrite")));
        Path link = Files.createSymbolicLink(dir.resolve("link"), model);
        assertEquals(
                "peft4j merge: --output " + link + " is --model itself" + refused,
                CliRunner.error(merge(link, "--overwrite")));
        Path relative = Path.of("").toAbsolutePath().relativize(adapter);
        assertEquals(
                "peft4j merge: --output " + relative + " is --adapter itself" + refused,
                CliRunner.error(merge(relative, "--overwrite")));

        // a llama2.c file as --model: its directory, which holds it, is refused too
        Path bin = model.resolve("stories260K.bin");
        String[] result =
                CliRunner.run(
                        "merge",
                        "--model",
                        bin.toString(),
                        "--adapter",
                        adapter.toString(),
                        "--output",
                        model.toString(),
                        "--overwrite");
        assertEquals(
                "peft4j merge: --output " + model + " contains --model " + bin + refused,
                CliRunner.error(result));
        assertEquals(modelFiles, Crashes.snapshot(model));
        assertEquals(adapterFiles, Crashes.snapshot(adapter));
    }

    @Test
    void aMergeThatFailsAfterTheChecksLeavesNoOutputBehind(@TempDir Path dir) throws IOException {
        // the output is checked before the adapter is read; the check must not create it
        Path output = dir.resolve("new").resolve("merged");
        String[] result =
                CliRunner.run(
                        "merge",
                        "--model",
                        model.toString(),
                        "--adapter",
                        dir.resolve("no-such-adapter").toString(),
                        "--output",
                        output.toString());
        assertTrue(CliRunner.error(result).contains("no-such-adapter"), CliRunner.error(result));
        assertFalse(Files.exists(dir.resolve("new")), "an empty output left behind");
    }

    @Test
    void anOutputThatIsAFileOrCannotBeCreatedIsNamedWithWhatIsWrong(@TempDir Path dir)
            throws IOException {
        Path file = Files.writeString(dir.resolve("notes.txt"), "mine");
        assertEquals(
                "peft4j merge: --output "
                        + file
                        + " is a file, not a directory; name a directory (it is created when"
                        + " missing)",
                CliRunner.error(merge(file)));
        assertEquals("mine", Files.readString(file));

        Path under = file.resolve("merged");
        assertEquals(
                "peft4j merge: --output "
                        + under
                        + " cannot be created: "
                        + file
                        + " is a file, not a directory",
                CliRunner.error(merge(under)));

        assumeTrue(Files.isDirectory(Path.of("/proc/self")), "no /proc on this system");
        Path proc = Path.of("/proc/peft4j-merged");
        assertEquals(
                "peft4j merge: --output /proc/peft4j-merged cannot be created: creating the"
                        + " directory /proc/peft4j-merged in /proc failed (no such file or"
                        + " directory: the file system there makes no new directories); choose a"
                        + " directory you can write to",
                CliRunner.error(merge(proc)));
    }

    @Test
    void aFullDiskNamesTheFileAndLeavesTheOldCheckpoint(@TempDir Path dir) throws IOException {
        Path output = dir.resolve("merged");
        assertEquals("0", merge(output)[0]);
        Files.writeString(output.resolve("README.md"), "an earlier merge");
        Map<String, String> before = Crashes.snapshot(output);
        String[] result;
        try (WriteSteps.Listening l = Crashes.fullDiskWhenWriting("model.safetensors")) {
            result = merge(output, "--overwrite");
        }
        Path real = output.toRealPath();
        assertEquals(
                "peft4j merge: cannot write "
                        + real.resolve("model.safetensors")
                        + ": No space left on device; "
                        + real
                        + " is unchanged",
                CliRunner.error(result));
        assertEquals(before, Crashes.snapshot(output));
        assertEquals(List.of(), Crashes.leftovers(output));
        assertTrue(Files.exists(output.resolve("README.md")));
    }
}
