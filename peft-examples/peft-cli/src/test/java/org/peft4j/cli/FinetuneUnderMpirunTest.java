package org.peft4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.ndarray.NDManager;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.io.SafetensorsReader;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.cli.CliRunner;
import org.peft4j.cli.Peft4j;
import org.peft4j.parallel.testing.MpiLauncher;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The fine-tuning command, unchanged, under {@code mpirun}: on two tensor-parallel ranks, a run
 * killed after a checkpoint and resumed with {@code --resume} ends with the loss and adapter of an
 * uninterrupted run (LoRA dropout is on, so the resumed run must also restore the random streams);
 * and one process, two tensor-parallel ranks and four ranks (two replicas of two) train the same
 * adapter from the same seed.
 */
class FinetuneUnderMpirunTest {

    private static final long TIMEOUT_SECONDS = 300;
    private static final int SAVE_STEPS = 3;
    private static final Pattern RESUMED = Pattern.compile("resuming from \\S+ at step (\\d+)");

    @TempDir Path dir;

    @Test
    void aKilledRunResumesToTheLossAndAdapterOfAnUninterruptedOne() throws Exception {
        Path model = Fixtures.stories260K();
        Path train = dir.resolve("train.jsonl");
        writeExamples(train, 48);

        Path whole = dir.resolve("whole");
        String wholeLog = finish(start(model, train, whole, false), whole);
        JsonNode expected = results(whole);
        int totalSteps = expected.get("steps").asInt();
        assertEquals(24, totalSteps, wholeLog);

        Path killed = dir.resolve("killed");
        Process interrupted = start(model, train, killed, false);
        Path marker = killed.resolve("checkpoint-" + SAVE_STEPS).resolve("trainer_state.json");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_SECONDS);
        while (!Files.isRegularFile(marker)) {
            if (!interrupted.isAlive() || System.nanoTime() > deadline) {
                kill(interrupted);
                fail("no " + marker + " appeared:\n" + Files.readString(log(killed)));
            }
            Thread.sleep(20);
        }
        kill(interrupted);
        assertFalse(
                Files.exists(killed.resolve("train_results.json")),
                "the run finished before it was killed; the test proves nothing");

        String resumedLog = finish(start(model, train, killed, true), killed);
        Matcher resumed = RESUMED.matcher(resumedLog);
        assertTrue(resumed.find(), "the second run did not resume:\n" + resumedLog);
        int from = Integer.parseInt(resumed.group(1));
        assertTrue(from >= SAVE_STEPS && from < totalSteps, "resumed at step " + from);

        JsonNode actual = results(killed);
        assertEquals(totalSteps, actual.get("steps").asInt());
        double loss = expected.get("train_loss").asDouble();
        assertEquals(loss, actual.get("train_loss").asDouble(), 1e-6 * loss, resumedLog);
        assertSameAdapter(
                whole.resolve("adapter_model.safetensors"),
                killed.resolve("adapter_model.safetensors"),
                1e-6);
    }

    @Test
    void oneTwoAndFourRanksTrainTheSameAdapterFromTheSameSeed() throws Exception {
        Path model = Fixtures.stories260K();
        Path train = dir.resolve("train.jsonl");
        writeExamples(train, 48);
        Path dev = dir.resolve("dev.jsonl");
        writeExamples(dev, 7); // two replicas evaluate 3 and 4 of them
        List<String> steps = List.of("--max-steps", "6", "--dev", dev.toString());

        Path one = dir.resolve("one");
        runInThisProcess(model, train, one, steps);
        Path tp = dir.resolve("tp2");
        String tpLog = finish(start(2, model, train, tp, steps, "0"), tp);
        Path tpdp = dir.resolve("tp2dp2");
        String tpdpLog = finish(start(4, model, train, tpdp, steps, "0"), tpdp);
        assertTrue(tpdpLog.contains("tensor 2 x data 2"), "not a 2 x 2 layout:\n" + tpdpLog);

        // the split layers' A is drawn whole and cut, so every layout starts from one adapter
        double loss = results(one).get("train_loss").asDouble();
        double evalLoss = results(one).get("eval_loss").asDouble();
        for (Path run : List.of(tp, tpdp)) {
            assertEquals(6, results(run).get("steps").asInt(), run.toString());
            assertEquals(
                    loss,
                    results(run).get("train_loss").asDouble(),
                    1e-5 * loss,
                    run + "\n" + tpLog + "\n" + tpdpLog);
            assertEquals(evalLoss, results(run).get("eval_loss").asDouble(), 1e-5 * evalLoss);
            assertSameAdapter(
                    one.resolve("adapter_model.safetensors"),
                    run.resolve("adapter_model.safetensors"),
                    1e-4);
        }
    }

    @Test
    void prefixTuningOnTwoRanksTrainsTheSingleProcessPrefix() throws Exception {
        Path model = Fixtures.stories260K();
        Path train = dir.resolve("train.jsonl");
        writeExamples(train, 48);
        List<String> prefix =
                List.of(
                        "--max-steps",
                        "6",
                        "--method",
                        "prefix",
                        "--prefix-projection",
                        "--num-prefix-tokens",
                        "8");
        Path one = dir.resolve("one");
        runInThisProcess(model, train, one, prefix);
        Path tp = dir.resolve("tp2");
        String tpLog = finish(start(2, model, train, tp, prefix, "0"), tp);

        // the encoder's split layer is drawn whole and cut, as the LoRA matrices are
        double loss = results(one).get("train_loss").asDouble();
        assertEquals(loss, results(tp).get("train_loss").asDouble(), 1e-5 * loss, tpLog);
        // Adam divides each update by the gradient's own size, so a gradient entry near zero that
        // differs in the last bits between layouts moves by up to the learning rate: the tensors
        // agree to 1e-3 after 6 steps at 1e-2 (ParallelTrainingMpiTest pins gradients to 1e-5)
        for (String file : List.of("adapter_model.safetensors", "prefix_encoder.safetensors")) {
            assertSameAdapter(one.resolve(file), tp.resolve(file), 1e-3);
        }
    }

    /** Short stories about Mia, each a prompt and a continuation, the same on every run. */
    private static void writeExamples(Path file, int count) throws IOException {
        String[] animals = {"dog", "cat", "bird", "fish", "bunny", "frog"};
        String[] places = {"park", "garden", "house", "forest", "pond", "yard"};
        String[] feelings = {"happy", "sad", "scared", "excited", "tired", "proud"};
        Random random = new Random(17);
        ObjectMapper json = new ObjectMapper();
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            String animal = animals[random.nextInt(animals.length)];
            String place = places[random.nextInt(places.length)];
            String feeling = feelings[random.nextInt(feelings.length)];
            lines.add(
                    json.writeValueAsString(
                            Map.of(
                                    "src",
                                    "Once upon a time, there was a little girl named Mia.",
                                    "tgt",
                                    String.format(
                                            Locale.ROOT,
                                            "Mia had a %s. One day they went to the %s. The %s"
                                                    + " was %s, and Mia hugged it.",
                                            animal,
                                            place,
                                            animal,
                                            feeling))));
        }
        Files.write(file, lines, StandardCharsets.UTF_8);
    }

    private Process start(Path model, Path train, Path output, boolean resume) throws IOException {
        return start(2, model, train, output, resume ? List.of("--resume") : List.of(), "0.1");
    }

    private Process start(
            int ranks, Path model, Path train, Path output, List<String> extra, String dropout)
            throws IOException {
        List<String> command = MpiLauncher.javaCommand(ranks);
        // the resumption line is logged at INFO, whatever level the build sets
        command.add("-Dorg.slf4j.simpleLogger.log.org.peft4j.train.FineTuner=info");
        command.add(Peft4j.class.getName());
        command.addAll(arguments(model, train, output, dropout));
        command.add("--tensor-parallel-degree");
        command.add("2");
        command.addAll(extra);
        Files.createDirectories(output);
        return new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log(output).toFile()))
                .start();
    }

    /** Runs {@code finetune} on one process, this one, without dropout. */
    private static void runInThisProcess(Path model, Path train, Path output, List<String> extra) {
        List<String> args = new ArrayList<>(arguments(model, train, output, "0"));
        args.addAll(extra);
        String[] result = CliRunner.run(args.toArray(String[]::new));
        assertEquals("0", result[0], result[2]);
    }

    /** The {@code finetune} command line of every run, without a layout. */
    private static List<String> arguments(Path model, Path train, Path output, String dropout) {
        return List.of(
                "finetune",
                "--model",
                model.toString(),
                "--train",
                train.toString(),
                "--output",
                output.toString(),
                "--epochs",
                "2",
                "--batch-size",
                "4",
                "--learning-rate",
                "1e-2",
                "--warmup-steps",
                "2",
                "--lora-dropout",
                dropout,
                "--src-length",
                "24",
                "--max-length",
                "64",
                "--save-steps",
                Integer.toString(SAVE_STEPS));
    }

    /** The ranks' output, beside (not inside) the run's directory. */
    private static Path log(Path output) {
        return output.resolveSibling(output.getFileName() + ".log");
    }

    private static String finish(Process process, Path output) throws Exception {
        if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
            kill(process);
            fail("mpirun did not finish:\n" + Files.readString(log(output)));
        }
        String text = Files.readString(log(output));
        assertEquals(0, process.exitValue(), text);
        return text;
    }

    /** Kills the ranks first: killing mpirun alone can leave them running. */
    private static void kill(Process process) throws InterruptedException {
        process.descendants().forEach(ProcessHandle::destroyForcibly);
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
    }

    private static JsonNode results(Path output) throws IOException {
        return new ObjectMapper().readTree(output.resolve("train_results.json").toFile());
    }

    private static void assertSameAdapter(Path expected, Path actual, double tolerance)
            throws IOException {
        try (NDManager manager = NDManager.newBaseManager();
                SafetensorsReader a = SafetensorsReader.open(expected);
                SafetensorsReader b = SafetensorsReader.open(actual)) {
            assertEquals(a.getTensors().keySet(), b.getTensors().keySet());
            assertFalse(a.getTensors().isEmpty());
            for (String name : a.getTensors().keySet()) {
                float[] x = a.read(name, manager).toFloatArray();
                float[] y = b.read(name, manager).toFloatArray();
                assertEquals(x.length, y.length, name);
                for (int i = 0; i < x.length; i++) {
                    assertEquals(
                            x[i], y[i], tolerance * (1 + Math.abs(x[i])), name + "[" + i + "]");
                }
            }
        }
    }
}
