package org.peft4j.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertSameParameters;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.peft4j.core.PeftModel;
import org.peft4j.core.io.NativeArrays;
import org.peft4j.core.io.WriteSteps;
import org.peft4j.core.testing.Crashes;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.lora.LoRALinear;
import org.peft4j.lora.LoRAModel;
import org.peft4j.parallel.comm.MpiCommunicator;
import org.peft4j.parallel.testing.RandomArrays;
import org.peft4j.parallel.testing.SharedDirectory;
import org.peft4j.parallel.testing.TinyMlp;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * A tensor-parallel adapter save on two ranks is all or nothing for the directory: both ranks write
 * their shards into one staging directory and rank 0 swaps it in after a barrier. Rank 0 is
 * "killed" after each of its steps by copying the shared directory as it is at that moment (a kill
 * would leave exactly that on disk) and putting the copy back once the save is done; then both
 * ranks load, recovering at the same moment (the directory's lock lets one of them do it), and find
 * the old adapter or the new one, file for file.
 */
@Tag("mpi")
class ShardedSaveMpiTest {

    private static final long H = 8;
    private static final long F = 16;

    private final TensorParallel group = TensorParallel.of(MpiCommunicator.world());
    private NDManager manager;
    private NDArray[] weights;

    @BeforeEach
    void open() {
        assertEquals(2, group.getDegree(), "run with mpirun -np 2");
        manager = NDManager.newBaseManager();
        weights =
                new NDArray[] {
                    RandomArrays.gaussian(manager, 1, 0.3, F, H),
                    RandomArrays.gaussian(manager, 2, 0.3, F),
                    RandomArrays.gaussian(manager, 3, 0.3, H, F),
                    RandomArrays.gaussian(manager, 4, 0.3, H)
                };
    }

    @AfterEach
    void close() {
        manager.close();
    }

    /** A parallel LoRA model whose B matrices are drawn from a seed (the same on both ranks). */
    private LoRAModel adapter(double alpha, long seed) {
        LoRAModel model =
                new LoRAModel(
                        new TinyMlp(group, manager, weights),
                        LoRAConfig.builder()
                                .setTargetModules("up", "down")
                                .optR(4)
                                .optLoraAlpha(alpha)
                                .build());
        for (LoRALinear layer : model.getLoRALayers().values()) {
            NDArray b = layer.getLoraB().getArray();
            NativeArrays.copyInto(
                    b, RandomArrays.gaussian(manager, seed++, 0.3, b.getShape().getShape()));
        }
        return model;
    }

    @Test
    void killedAfterEveryStepOfRankZerosSwapBothRanksLoadTheOldOrTheNewAdapter()
            throws Exception {
        LoRAModel old = adapter(8, 10); // saved merged
        LoRAModel next = adapter(32, 20); // the same r, another alpha, saved sharded
        try (SharedDirectory shared = SharedDirectory.create(group.getCommunicator(), manager)) {
            Path root = Files.createDirectories(shared.path().resolve("runs"));
            Path dir = root.resolve("adapter");
            Path killed = shared.path().resolve("killed");
            Path oldFiles = shared.path().resolve("old");
            Path newFiles = shared.path().resolve("new");
            old.savePretrained(oldFiles, true);
            next.savePretrained(newFiles, false);
            assertTrue(Files.exists(newFiles.resolve("adapter_model.tp01-of-02.safetensors")));

            int steps = 0;
            for (int n = 1; n == 1 || n <= steps; n++) {
                prepare(dir, old);
                KillPoint kill = new KillPoint(n, root, killed);
                try (WriteSteps.Listening l = WriteSteps.listen(kill)) {
                    next.savePretrained(dir, false);
                }
                // every rank returns after the swap: the new shards are there, nothing else
                assertEquals(Crashes.snapshot(newFiles), Crashes.snapshot(dir), "rank returned");
                group.getCommunicator().barrier();
                if (group.getRank() == 0) {
                    Files.writeString(shared.path().resolve("steps"), "" + kill.steps);
                    Files.writeString(shared.path().resolve("committed"), "" + kill.committedThen);
                    Crashes.deleteTree(root);
                    copy(killed, root);
                    Crashes.deleteTree(killed);
                }
                group.getCommunicator().barrier();
                steps = Integer.parseInt(Files.readString(shared.path().resolve("steps")));
                boolean isNew =
                        Boolean.parseBoolean(Files.readString(shared.path().resolve("committed")));
                LoRAModel loaded =
                        LoRAModel.fromPretrained(new TinyMlp(group, manager, weights), dir);
                group.getCommunicator().barrier();
                String what = "rank 0 killed after its step " + n + " of " + steps;
                assertEquals(
                        Crashes.snapshot(isNew ? newFiles : oldFiles),
                        Crashes.snapshot(dir),
                        what + ": the files");
                assertEquals((isNew ? next : old).getPeftConfig(), loaded.getPeftConfig(), what);
                assertSameParameters(
                        (isNew ? next : old).getTrainableParameters(),
                        loaded.getTrainableParameters(),
                        what);
                assertEquals(List.of(), Crashes.leftovers(dir), what);
                group.getCommunicator().barrier();
            }
            assertTrue(steps >= 6, "rank 0 took " + steps + " steps after staging");
        }
    }

    /**
     * Rank 0's listener: counts rank 0's steps from the point where every rank has written its
     * shard (staged), and at step {@code at} copies the shared directory as a kill there would
     * leave it. The other ranks wait in a barrier meanwhile, so the copy is a state on disk.
     */
    private final class KillPoint implements WriteSteps.Listener {

        private final int at;
        private final Path root;
        private final Path copy;
        int steps = -1;
        boolean committed;
        boolean committedThen;

        KillPoint(int at, Path root, Path copy) {
            this.at = at;
            this.root = root;
            this.copy = copy;
        }

        @Override
        public void reached(WriteSteps.Step step, Path path) throws IOException {
            if (group.getRank() != 0) {
                return;
            }
            if (step == WriteSteps.Step.STAGED) {
                steps = 0;
            }
            if (steps < 0) {
                return;
            }
            steps++;
            // the mark's rename is the commit point
            committed |=
                    step == WriteSteps.Step.FILE_REPLACED && path.endsWith(".peft4j-complete");
            if (steps == at) {
                copy(root, copy);
                committedThen = committed;
            }
        }
    }

    private void prepare(Path dir, LoRAModel old) throws IOException {
        if (group.getRank() == 0) {
            Crashes.deleteTree(dir);
        }
        group.getCommunicator().barrier();
        old.savePretrained(dir, true);
        assertTrue(Files.exists(dir.resolve(PeftModel.WEIGHTS_FILE)));
        group.getCommunicator().barrier();
    }

    private static void copy(Path from, Path to) throws IOException {
        try (Stream<Path> files = Files.walk(from)) {
            for (Path p : files.toList()) {
                Path target = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(target);
                } else {
                    Files.copy(p, target);
                }
            }
        }
    }
}
