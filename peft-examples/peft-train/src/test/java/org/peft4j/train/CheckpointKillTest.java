package org.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.io.WriteSteps;
import org.peft4j.core.testing.Crashes;
import org.peft4j.core.testing.Crashes.Kill;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.lora.LoRAModel;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.train.data.Dataset;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * A training run killed after any write step (of a checkpoint, of the pruning of an old one, of
 * the metrics and loss curve, of the final adapter) leaves every {@code checkpoint-<step>} whole,
 * exactly as it was committed, or absent; {@link FineTuner#latestCheckpoint} then finds the newest
 * whole one, and a run resumed from it in the same directory completes it and leaves no temporary
 * or staging file behind.
 */
class CheckpointKillTest {

    private static final int STEPS = 3;

    @TempDir Path dir;

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    private static FineTuneConfig config() {
        // checkpoints after steps 1 and 2 (none after the last); the second prunes the first
        return FineTuneConfig.builder()
                .optMaxSteps(STEPS)
                .optBatchSize(8)
                .optLearningRate(1e-2)
                .optSaveSteps(1)
                .optSaveTotalLimit(1)
                .optLoggingSteps(1)
                .build();
    }

    private static LoRAConfig loraConfig() {
        return LoRAConfig.builder()
                .setTargetModules(LlamaForCausalLM.PROJECTIONS)
                .optR(4)
                .optLoraAlpha(8)
                .build();
    }

    private LlamaForCausalLM base() {
        return LlamaForCausalLM.random(FineTunerTest.TINY, manager, 7);
    }

    /** A fresh run. */
    private FineTuner.Result run(LoRAModel model, Path output) throws IOException {
        return run(model, output, null);
    }

    private FineTuner.Result run(LoRAModel model, Path output, Path resume) throws IOException {
        return new FineTuner(
                        TrainableModel.of(model),
                        config(),
                        new Dataset(FineTunerTest.reversal(32, 1), 42),
                        List.of(),
                        output,
                        manager,
                        new PrintStream(new ByteArrayOutputStream()))
                .run(resume);
    }

    @Test
    void killedAfterEveryWriteStepTheNextRunResumesFromAWholeCheckpoint() throws Exception {
        Path output = dir.resolve("run");
        List<String> seen = new ArrayList<>();
        for (int n = 1; ; n++) {
            Crashes.deleteTree(output);
            Record record = new Record();
            Kill kill =
                    Crashes.killAfter(
                            n, record, () -> run(new LoRAModel(base(), loraConfig()), output));
            if (kill == null) {
                assertTrue(n > 40, "a run took only " + (n - 1) + " write steps: " + seen);
                assertEquals(List.of("checkpoint-2"), List.copyOf(whole(output).keySet()));
                break;
            }
            String what = "killed after write step " + n + " (" + kill.step + ")";
            Path latest = latestOrNull(output);
            assertEquals(record.expected(), whole(output), what + ": the checkpoints left");
            assertEquals(
                    record.newest(),
                    latest == null ? null : latest.getFileName().toString(),
                    what + ": the newest");
            assertEquals(
                    record.adapterCommitted,
                    Files.exists(output.resolve("adapter_config.json")),
                    what + ": the final adapter");
            // a temporary file of an earlier version's naming, as seen beside the loss curve
            Files.writeString(output.resolve(".loss.svg5039485720394857201.tmp"), "<svg");

            LoRAModel resumed =
                    latest == null
                            ? new LoRAModel(base(), loraConfig())
                            : LoRAModel.fromPretrained(base(), latest);
            assertEquals(STEPS, run(resumed, output, latest).steps(), what);
            assertEquals(List.of(), Crashes.leftovers(output), what + ", then resumed");
            try (Stream<Path> files = Files.list(output)) {
                List<String> names = files.map(p -> p.getFileName().toString()).sorted().toList();
                assertTrue(
                        names.containsAll(
                                List.of(
                                        "adapter_config.json",
                                        "adapter_model.safetensors",
                                        "checkpoint-2",
                                        "loss.svg",
                                        "metrics.csv",
                                        "train_results.json")),
                        what + ", then resumed: " + names);
            }
            seen.add(kill.step.toString());
        }
        assertTrue(seen.contains("COMMITTED") && seen.contains("REMOVED"), seen.toString());
    }

    private static Path latestOrNull(Path output) throws IOException {
        try {
            return FineTuner.latestCheckpoint(output);
        } catch (NoSuchFileException e) {
            return null;
        }
    }

    /** Every {@code checkpoint-<step>} of the output directory, with its files' digests. */
    private static Map<String, Map<String, String>> whole(Path output) throws IOException {
        Map<String, Map<String, String>> out = new TreeMap<>();
        if (!Files.isDirectory(output)) {
            return out;
        }
        try (Stream<Path> files = Files.list(output)) {
            for (Path p : files.toList()) {
                if (p.getFileName().toString().matches("checkpoint-\\d+")) {
                    out.put(p.getFileName().toString(), Crashes.snapshot(p));
                }
            }
        }
        return out;
    }

    /**
     * Records, step by step, which checkpoints a run committed (with their files as committed),
     * which it deleted (a deletion is done once the directory is renamed aside), and whether the
     * final adapter's save committed.
     */
    private static final class Record implements WriteSteps.Listener {

        private final Map<String, Map<String, String>> committed = new TreeMap<>();
        boolean adapterCommitted;

        @Override
        public void reached(WriteSteps.Step step, Path path) {
            String name = path.getFileName().toString();
            if (step == WriteSteps.Step.FILE_REPLACED && name.equals(".peft4j-complete")) {
                // the mark's rename commits a staging directory .<target>.staging
                Path staging = path.getParent();
                String stagingName = staging.getFileName().toString();
                String target =
                        stagingName.substring(1, stagingName.length() - ".staging".length());
                if (target.matches("checkpoint-\\d+")) {
                    Map<String, String> files = Crashes.snapshot(staging);
                    files.remove(".peft4j-complete");
                    committed.put(target, files);
                } else {
                    adapterCommitted = true;
                }
            } else if (step == WriteSteps.Step.MOVED_ASIDE && name.matches("checkpoint-\\d+")) {
                committed.remove(name); // a deletion is done once the directory is renamed aside
            }
        }

        /** The checkpoints that must be there after a kill, as they were committed. */
        Map<String, Map<String, String>> expected() {
            return committed;
        }

        /** The newest of them, or {@code null}. */
        String newest() {
            return committed.keySet().stream()
                    .max(Comparator.comparingInt(n -> Integer.parseInt(n.substring(11))))
                    .orElse(null);
        }
    }
}
