package org.peft4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.io.WriteSteps;
import org.peft4j.core.testing.Crashes;
import org.peft4j.core.testing.Fixtures;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * {@code peft4j finetune --output} onto an existing adapter or run is refused unless {@code
 * --overwrite} is given (then its old contents go), but resuming a run in its own directory stays
 * allowed; the inputs are never written over; a file as {@code --output} and a full disk end in one
 * line that names the path.
 */
class FinetuneOutputTest {

    @TempDir static Path shared;

    private static Path data;

    @BeforeAll
    static void writeData() throws IOException {
        StringBuilder lines = new StringBuilder();
        for (int i = 0; i < 8; i++) {
            lines.append("{\"src\": \"Tom had a dog.\", \"tgt\": \"The dog was big.\"}\n");
        }
        data = Files.writeString(shared.resolve("train.jsonl"), lines.toString());
    }

    /** One or two quick steps of LoRA on stories260K into {@code output}. */
    private static String[] finetune(Path output, String... more) {
        List<String> args =
                new ArrayList<>(
                        List.of(
                                "finetune",
                                "--model",
                                Fixtures.stories260K().toString(),
                                "--train",
                                data.toString(),
                                "--output",
                                output.toString(),
                                "--batch-size",
                                "4",
                                "--max-length",
                                "64",
                                "--src-length",
                                "16"));
        args.addAll(List.of(more));
        return CliRunner.run(args.toArray(new String[0]));
    }

    @Test
    void anExistingAdapterIsReplacedOnlyWithOverwriteAndItsOwnRunResumes(@TempDir Path dir)
            throws IOException {
        Path output = dir.resolve("adapter");
        String[] first = finetune(output, "--max-steps", "2", "--save-steps", "1");
        assertEquals("0", first[0], first[2]);
        Files.createDirectories(output.resolve("checkpoint-500")); // of an older, longer run
        Files.writeString(output.resolve("checkpoint-500/trainer_state.json"), "{}");
        Map<String, String> before = Crashes.snapshot(output);

        assertEquals(
                "peft4j finetune: --output "
                        + output
                        + " is not empty (it holds adapter_config.json, adapter_model.safetensors,"
                        + " checkpoint-1, checkpoint-500, lora_config.json, ...); give --overwrite"
                        + " to replace it (its contents are deleted when training starts),"
                        + " --resume to continue the run it holds, or choose a new or empty"
                        + " directory",
                CliRunner.error(finetune(output, "--max-steps", "2")));
        assertEquals(before, Crashes.snapshot(output), "nothing written");

        // resuming the run in its own directory is what the directory is for
        Path checkpoint = output.resolve("checkpoint-1");
        String[] resumed =
                finetune(output, "--max-steps", "2", "--resume", checkpoint.toString());
        assertEquals("0", resumed[0], resumed[2]);
        assertEquals(
                "peft4j finetune: --overwrite would delete the run that --resume continues in "
                        + output
                        + "; give one of them",
                CliRunner.error(finetune(output, "--max-steps", "2", "--resume", "--overwrite")));

        String[] replaced = finetune(output, "--max-steps", "1", "--overwrite");
        assertEquals("0", replaced[0], replaced[2]);
        assertFalse(Files.exists(output.resolve("checkpoint-500")), "the old run's files are gone");
        assertFalse(Files.exists(output.resolve("checkpoint-1")));
        assertTrue(Files.isRegularFile(output.resolve("adapter_model.safetensors")));
        assertTrue(
                Files.readString(output.resolve("train_results.json")).contains("\"steps\" : 1"),
                "the new run's results");
        assertEquals(List.of(), Crashes.leftovers(output));
    }

    @Test
    void theInputsAreNeverWrittenOverAndAFileIsNoOutput(@TempDir Path dir) throws IOException {
        Path model = Fixtures.stories260K();
        assertEquals(
                "peft4j finetune: --output "
                        + model
                        + " is --model itself; writing there would destroy the input (refused even"
                        + " with --overwrite): choose another directory",
                CliRunner.error(finetune(model, "--overwrite")));
        assertEquals(
                "peft4j finetune: --output "
                        + shared
                        + " contains --train "
                        + data
                        + "; writing there would destroy the input (refused even with"
                        + " --overwrite): choose another directory",
                CliRunner.error(finetune(shared, "--overwrite")));
        assertEquals(
                "peft4j finetune: --output "
                        + data
                        + " is --train itself; writing there would destroy the input (refused"
                        + " even with --overwrite): choose another directory",
                CliRunner.error(finetune(data)));
        Path file = Files.writeString(dir.resolve("out.txt"), "mine");
        assertEquals(
                "peft4j finetune: --output "
                        + file
                        + " is a file, not a directory; name a directory (it is created when"
                        + " missing)",
                CliRunner.error(finetune(file)));
        assertEquals("mine", Files.readString(file));
    }

    @Test
    void aFullDiskWhileACheckpointIsWrittenNamesTheFile(@TempDir Path dir) throws IOException {
        Path output = dir.resolve("run");
        String[] result;
        try (WriteSteps.Listening l = Crashes.fullDiskWhenWriting("optimizer.safetensors")) {
            result = finetune(output, "--max-steps", "2", "--save-steps", "1");
        }
        Path checkpoint = output.toRealPath().resolve("checkpoint-1");
        assertEquals(
                "peft4j finetune: cannot write "
                        + checkpoint.resolve("optimizer.safetensors")
                        + ": No space left on device; "
                        + checkpoint
                        + " was not created",
                CliRunner.error(result));
        assertFalse(Files.exists(checkpoint), "no half-written checkpoint");
        assertEquals(List.of(), Crashes.leftovers(output));
    }
}
