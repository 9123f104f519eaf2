package org.peft4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.peft4j.core.testing.ArrayAssertions.assertAllClose;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;
import static org.peft4j.core.testing.ArrayAssertions.gamma;
import static org.peft4j.core.testing.ArrayAssertions.maxAbs;
import static org.peft4j.core.testing.ArrayAssertions.maxAbsDiff;

import ai.djl.ndarray.NDManager;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.io.SafetensorsReader;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.models.llama.LlamaConfig;
import org.peft4j.models.llama.ParityBounds;
import org.peft4j.train.Schedule;
import org.peft4j.parallel.testing.MpiLauncher;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The fine-tuning command, unchanged, under {@code mpirun}: on two tensor-parallel ranks, a run
 * killed after a checkpoint and resumed with {@code --resume} ends with the loss and adapter of an
 * uninterrupted run (LoRA dropout is on, so the resumed run must also restore the random streams);
 * and one process, two tensor-parallel ranks and four ranks (two replicas of two) train the same
 * adapter from the same seed.
 *
 * <p>Layouts sum in other orders, so their gradients at equal parameters agree to float32 rounding,
 * which the first step checks tightly. AdamW then divides each element's update by that element's
 * own gradient size: an element whose gradient is at the rounding level moves by up to the learning
 * rate in a direction the rounding picks. The trained adapters are therefore compared with the
 * bounds that follow from that (see {@link #assertTrainedAlike}), not element by element to a fixed
 * tolerance.
 */
class FinetuneUnderMpirunTest {

    private static final long TIMEOUT_SECONDS = 300;
    private static final int SAVE_STEPS = 3;
    private static final Pattern RESUMED = Pattern.compile("resuming from \\S+ at step (\\d+)");
    private static final String ADAPTER = "adapter_model.safetensors";
    private static final String OPTIMIZER = "optimizer.safetensors";

    /** Every run's peak rate and warmup. */
    private static final double LEARNING_RATE = 1e-2;

    private static final int WARMUP = 2;

    /** stories260K's sizes, as its {@code config.json} gives them. */
    private static final LlamaConfig STORIES =
            LlamaConfig.builder().setSizes(64, 172, 5, 8, 4, 512).build();

    /** The chain of sums behind a token's loss, on examples of up to 64 tokens, rank-8 LoRA. */
    private static final int FORWARD_TERMS = ParityBounds.lossTerms(STORIES, 64, 8);

    /** The chain behind one gradient element, over a batch of 4 examples of up to 64 tokens. */
    private static final int GRADIENT_TERMS = ParityBounds.gradientTerms(STORIES, 64, 8, 4 * 64);

    /**
     * With prefix tuning attention runs over 8 more positions, and the encoder (64 to 256 to the
     * keys and values) comes first, both ways.
     */
    private static final int PREFIX_GRADIENT_TERMS =
            ParityBounds.gradientTerms(STORIES, 64 + 8, 0, 4 * 64) + 2 * (64 + 256);

    /** {@code metrics.csv} prints 6 significant digits: two printed values, 1e-5 relative. */
    private static final double PRINTED = 1e-5;

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

        assertEquals(totalSteps, results(killed).get("steps").asInt());
        // the resumed run repeats the uninterrupted run's steps on the same layout from the
        // checkpoint's exact bits, but BLAS may still sum in another order (MKL picks kernels by
        // buffer alignment unless told otherwise): closeness after AdamW, not bitwise equality
        Trained trained =
                assertTrainedAlike(
                        whole, killed, List.of(ADAPTER), totalSteps, GRADIENT_TERMS, "resumed");
        System.out.println("PARITY finetune resumed at step " + from + " (TP=2): " + trained);
    }

    @Test
    void oneTwoAndFourRanksTrainTheSameAdapterFromTheSameSeed() throws Exception {
        Path model = Fixtures.stories260K();
        Path train = dir.resolve("train.jsonl");
        writeExamples(train, 48);
        Path dev = dir.resolve("dev.jsonl");
        writeExamples(dev, 7); // two replicas evaluate 3 and 4 of them

        // the first step, from one initial adapter in every layout: runs of two steps keep the
        // checkpoint of the first, whose optimizer state holds the first step's gradient
        List<String> first = List.of("--max-steps", "2");
        Path one1 = dir.resolve("one-first");
        runInThisProcess(model, train, one1, first, 1);
        Path tp1 = dir.resolve("tp2-first");
        finish(start(2, model, train, tp1, first, "0", 1), tp1);
        Path tpdp1 = dir.resolve("tp2dp2-first");
        String tpdpFirstLog = finish(start(4, model, train, tpdp1, first, "0", 1), tpdp1);
        assertTrue(tpdpFirstLog.contains("tensor 2 x data 2"), "not 2 x 2:\n" + tpdpFirstLog);

        // six steps, evaluated on data that the two replicas split unevenly
        List<String> steps = List.of("--max-steps", "6", "--dev", dev.toString());
        Path one = dir.resolve("one");
        runInThisProcess(model, train, one, steps, SAVE_STEPS);
        Path tp = dir.resolve("tp2");
        finish(start(2, model, train, tp, steps, "0", SAVE_STEPS), tp);
        Path tpdp = dir.resolve("tp2dp2");
        String tpdpLog = finish(start(4, model, train, tpdp, steps, "0", SAVE_STEPS), tpdp);
        assertTrue(tpdpLog.contains("tensor 2 x data 2"), "not a 2 x 2 layout:\n" + tpdpLog);

        Map<String, Path[]> layouts = new LinkedHashMap<>();
        layouts.put("TP=2", new Path[] {tp1, tp});
        layouts.put("TP=2 x DP=2", new Path[] {tpdp1, tpdp});
        for (Map.Entry<String, Path[]> layout : layouts.entrySet()) {
            String label = "LoRA " + layout.getKey();
            Path[] runs = layout.getValue();
            String firstStep = assertSameFirstStep(one1, runs[0], label);
            assertEquals(6, results(runs[1]).get("steps").asInt(), label);
            Trained trained =
                    assertTrainedAlike(one, runs[1], List.of(ADAPTER), 6, GRADIENT_TERMS, label);
            System.out.println(
                    "PARITY finetune " + label + ": " + firstStep + "; after 6 steps " + trained);
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
        runInThisProcess(model, train, one, prefix, SAVE_STEPS);
        Path tp = dir.resolve("tp2");
        finish(start(2, model, train, tp, prefix, "0", SAVE_STEPS), tp);

        // the encoder's split layer is drawn whole and cut, as the LoRA matrices are; the
        // gradients of the first step are pinned by ParallelTrainingMpiTest
        Trained trained =
                assertTrainedAlike(
                        one,
                        tp,
                        List.of(ADAPTER, "prefix_encoder.safetensors"),
                        6,
                        PREFIX_GRADIENT_TERMS,
                        "prefix TP=2");
        System.out.println("PARITY finetune prefix TP=2: after 6 steps " + trained);
    }

    /**
     * Asserts that two runs of two steps that saved {@code checkpoint-1} agree on the first step,
     * where both start from the same adapter: the loss and gradient norm the run logged, the
     * gradient itself (the first moment AdamW keeps, {@code (1 - beta1) g} after clipping), and the
     * untouched {@code lora_A} matrices. Returns the measured differences.
     */
    private static String assertSameFirstStep(Path expected, Path actual, String label)
            throws IOException {
        Map<String, Double> a = metrics(expected).get(0);
        Map<String, Double> b = metrics(actual).get(0);
        assertEquals(1.0, b.get("step"), label + ": the first logged step");
        // the loss: a float32 forward pass, printed to 6 digits
        double loss =
                assertRelative(
                        a.get("loss"),
                        b.get("loss"),
                        gamma(FORWARD_TERMS) + PRINTED,
                        label + ": the loss of the first step");
        double norm =
                assertRelative(
                        a.get("grad_norm"),
                        b.get("grad_norm"),
                        gamma(GRADIENT_TERMS) + PRINTED,
                        label + ": the gradient norm of the first step");

        // A gradient's rounding error follows the magnitudes summed into it, those of the
        // tensor's largest elements, not the element's own value (one that cancels to near zero
        // has a large relative error): gamma_n of the tensor's largest, n the chain behind one
        // gradient, twice for the gradient and the clipping norm it was divided by.
        double tolerance = 2 * gamma(GRADIENT_TERMS);
        Map<String, float[]> m = tensors(expected.resolve("checkpoint-1").resolve(OPTIMIZER));
        Map<String, float[]> n = tensors(actual.resolve("checkpoint-1").resolve(OPTIMIZER));
        assertEquals(m.keySet(), n.keySet(), label + ": the optimizer's tensors");
        double worst = 0;
        int moments = 0;
        for (String name : m.keySet()) {
            if (!name.startsWith("exp_avg.")) {
                continue;
            }
            moments++;
            double scale = maxAbs(m.get(name));
            assertAllClose(
                    m.get(name),
                    n.get(name),
                    tolerance,
                    tolerance * scale,
                    label + ": the clipped gradient of the first step, " + name);
            if (scale > 0) {
                worst = Math.max(worst, maxAbsDiff(m.get(name), n.get(name)) / scale);
            }
        }
        assertTrue(moments > 0, label + ": no first moments in the checkpoint");

        // B starts at zero, so A's first gradient is exactly zero (0 x anything finite) and
        // AdamW leaves it as it was drawn: the same bits, since a split layer's A is drawn whole
        // from the seed and cut, in every layout
        Map<String, float[]> x = tensors(expected.resolve("checkpoint-1").resolve(ADAPTER));
        Map<String, float[]> y = tensors(actual.resolve("checkpoint-1").resolve(ADAPTER));
        assertEquals(x.keySet(), y.keySet(), label + ": the adapter's tensors");
        int matrices = 0;
        for (String name : x.keySet()) {
            if (name.contains("lora_A")) {
                matrices++;
                assertSameBits(
                        x.get(name),
                        y.get(name),
                        label
                                + ": "
                                + name
                                + " after the first step is the initial A, drawn from one seed"
                                + " and untouched by a zero gradient");
            }
        }
        assertTrue(matrices > 0, label + ": no lora_A in the checkpoint");
        return String.format(
                Locale.ROOT,
                "step 1 loss rel. diff %.1e, gradient norm rel. diff %.1e, max gradient diff %.1e"
                        + " of its tensor's largest (tolerance %.1e)",
                loss,
                norm,
                worst,
                tolerance);
    }

    /**
     * Asserts that two runs whose gradients at equal parameters differ by rounding only trained
     * alike, and returns what was measured: every element within {@link
     * ParityBounds#adamElementBound} and the root mean square difference within {@link
     * ParityBounds#adamRmsBound}, where AdamW leaves runs that differ by rounding; and the final
     * losses within what the adapters' measured distance {@code |d|} explains, the loss being
     * smooth in them: {@code |grad L| |d|}, with the largest gradient norm the reference logged for
     * {@code |grad L|}, plus a forward pass's rounding {@code gamma_n L}.
     *
     * @param expected the reference run's output
     * @param actual the run under test
     * @param files the trained files to compare
     * @param steps the number of steps
     * @param gradientTerms the chain of sums behind one gradient
     * @param label the layout, for the messages
     */
    private static Trained assertTrainedAlike(
            Path expected,
            Path actual,
            List<String> files,
            int steps,
            int gradientTerms,
            String label)
            throws IOException {
        Schedule schedule = new Schedule(Schedule.Kind.LINEAR, LEARNING_RATE, WARMUP, steps);
        double[] rates = new double[steps];
        for (int t = 0; t < steps; t++) {
            rates[t] = schedule.rate(t);
        }
        double elementBound = ParityBounds.adamElementBound(rates);
        double rmsBound = ParityBounds.adamRmsBound(rates, gradientTerms);

        double squares = 0;
        long count = 0;
        double worst = 0;
        String worstAt = "";
        for (String file : files) {
            Map<String, float[]> a = tensors(expected.resolve(file));
            Map<String, float[]> b = tensors(actual.resolve(file));
            assertEquals(a.keySet(), b.keySet(), label + ": the tensors of " + file);
            assertFalse(a.isEmpty(), label + ": " + file + " is empty");
            for (String name : a.keySet()) {
                float[] x = a.get(name);
                float[] y = b.get(name);
                assertAllClose(
                        x,
                        y,
                        0,
                        elementBound,
                        label
                                + ": "
                                + name
                                + " after "
                                + steps
                                + " steps, within 2 sum_t B_t lr_t");
                for (int i = 0; i < x.length; i++) {
                    double d = (double) x[i] - y[i];
                    squares += d * d;
                    if (Math.abs(d) > worst) {
                        worst = Math.abs(d);
                        worstAt = name + "[" + i + "]";
                    }
                }
                count += x.length;
            }
        }
        double rms = Math.sqrt(squares / count);
        double distance = Math.sqrt(squares);
        Trained adapters =
                new Trained(
                        worst,
                        worstAt,
                        elementBound,
                        rms,
                        rmsBound,
                        distance,
                        Double.NaN,
                        Double.NaN);
        assertTrue(
                rms <= rmsBound,
                label
                        + ": the root mean square difference of the trained tensors is over 2"
                        + " sqrt(rho) sum_t sqrt(B_t) lr_t: "
                        + adapters);

        double largestGradient = 0;
        for (Map<String, Double> row : metrics(expected)) {
            largestGradient = Math.max(largestGradient, row.get("grad_norm"));
        }
        JsonNode x = results(expected);
        JsonNode y = results(actual);
        double[] diffs = {Double.NaN, Double.NaN};
        String[] keys = {"train_loss", "eval_loss"};
        for (int k = 0; k < keys.length; k++) {
            if (!x.has(keys[k])) {
                continue;
            }
            double lx = x.get(keys[k]).asDouble();
            double ly = y.get(keys[k]).asDouble();
            double bound = gamma(FORWARD_TERMS) * lx + largestGradient * distance;
            assertTrue(
                    Math.abs(lx - ly) <= bound,
                    String.format(
                            Locale.ROOT,
                            "%s: %s %s vs %s, more than the %.3e that gamma_n L + |grad L| |d|"
                                    + " allows (|grad L| <= %.3g; %s)",
                            label,
                            keys[k],
                            lx,
                            ly,
                            bound,
                            largestGradient,
                            adapters));
            diffs[k] = Math.abs(lx - ly) / lx;
        }
        return new Trained(
                worst, worstAt, elementBound, rms, rmsBound, distance, diffs[0], diffs[1]);
    }

    /** What {@link #assertTrainedAlike} measured, as the PARITY line prints it. */
    private record Trained(
            double worst,
            String worstAt,
            double elementBound,
            double rms,
            double rmsBound,
            double distance,
            double lossDiff,
            double evalDiff) {

        @Override
        public String toString() {
            return String.format(
                            Locale.ROOT,
                            "max adapter diff %.1e%s (bound %.1e), rms %.1e (bound %.1e),"
                                    + " distance %.1e, loss rel. diff %.1e",
                            worst,
                            worst > 0 ? " at " + worstAt : "",
                            elementBound,
                            rms,
                            rmsBound,
                            distance,
                            lossDiff)
                    + (Double.isNaN(evalDiff)
                            ? ""
                            : String.format(Locale.ROOT, ", eval loss rel. diff %.1e", evalDiff));
        }
    }

    /**
     * Asserts {@code |actual - expected| <= rtol |expected|} and returns the relative difference.
     */
    private static double assertRelative(double expected, double actual, double rtol, String what) {
        double diff = Math.abs(actual - expected) / Math.abs(expected);
        assertTrue(
                diff <= rtol,
                String.format(
                        Locale.ROOT,
                        "%s: %s vs %s, %.3e relative > %.3e",
                        what,
                        expected,
                        actual,
                        diff,
                        rtol));
        return diff;
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
        return start(
                2,
                model,
                train,
                output,
                resume ? List.of("--resume") : List.of(),
                "0.1",
                SAVE_STEPS);
    }

    private Process start(
            int ranks,
            Path model,
            Path train,
            Path output,
            List<String> extra,
            String dropout,
            int saveSteps)
            throws IOException {
        List<String> command = MpiLauncher.javaCommand(ranks);
        // the resumption line is logged at INFO, whatever level the build sets
        command.add("-Dorg.slf4j.simpleLogger.log.org.peft4j.train.FineTuner=info");
        command.add(Peft4j.class.getName());
        command.addAll(arguments(model, train, output, dropout, saveSteps));
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
    private static void runInThisProcess(
            Path model, Path train, Path output, List<String> extra, int saveSteps) {
        List<String> args = new ArrayList<>(arguments(model, train, output, "0", saveSteps));
        args.addAll(extra);
        String[] result = CliRunner.run(args.toArray(String[]::new));
        assertEquals("0", result[0], result[2]);
    }

    /**
     * The {@code finetune} command line of every run, without a layout; every step is logged, so
     * that {@code metrics.csv} has each step's loss and gradient norm.
     */
    private static List<String> arguments(
            Path model, Path train, Path output, String dropout, int saveSteps) {
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
                Double.toString(LEARNING_RATE),
                "--warmup-steps",
                Integer.toString(WARMUP),
                "--lora-dropout",
                dropout,
                "--src-length",
                "24",
                "--max-length",
                "64",
                "--save-steps",
                Integer.toString(saveSteps),
                "--logging-steps",
                "1");
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

    /** The rows of a run's {@code metrics.csv}, by column; empty cells are absent. */
    private static List<Map<String, Double>> metrics(Path output) throws IOException {
        List<String> lines = Files.readAllLines(output.resolve("metrics.csv"));
        String[] header = lines.get(0).split(",", -1);
        List<Map<String, Double>> rows = new ArrayList<>();
        for (String line : lines.subList(1, lines.size())) {
            String[] cells = line.split(",", -1);
            Map<String, Double> row = new LinkedHashMap<>();
            for (int i = 0; i < header.length; i++) {
                if (!cells[i].isEmpty()) {
                    row.put(header[i], Double.parseDouble(cells[i]));
                }
            }
            rows.add(row);
        }
        assertFalse(rows.isEmpty(), output + "/metrics.csv has no rows");
        return rows;
    }

    /** The tensors of a safetensors file as floats, by name in name order. */
    private static Map<String, float[]> tensors(Path file) throws IOException {
        Map<String, float[]> out = new TreeMap<>();
        try (NDManager manager = NDManager.newBaseManager();
                SafetensorsReader reader = SafetensorsReader.open(file)) {
            for (String name : reader.getTensors().keySet()) {
                out.put(name, reader.read(name, manager).toFloatArray());
            }
        }
        return out;
    }
}
