package org.peft4j.core.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.testing.Crashes;
import org.peft4j.core.testing.Crashes.Kill;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * The all-or-nothing directory: killed after every step of a save (and of the recovery after it),
 * the directory is afterwards exactly the old one or exactly the new one, with no leftovers.
 */
class AtomicDirectoryTest {

    @TempDir Path root;

    /** The old directory: two files the save replaces, one it drops, two it keeps. */
    private Path prepareOld(Path target) throws IOException {
        clear(root);
        Files.createDirectories(target.resolve("sub"));
        Files.writeString(target.resolve("weights"), "old weights");
        Files.writeString(target.resolve("config"), "old config");
        Files.writeString(target.resolve("stale"), "dropped by the new save");
        Files.writeString(target.resolve("README.md"), "kept");
        Files.writeString(target.resolve("sub/metrics.csv"), "kept too");
        return target;
    }

    private static final Predicate<String> KEEP = n -> n.equals("README.md") || n.equals("sub");

    private static void saveNew(Path target) throws IOException {
        AtomicDirectory.replace(
                target,
                KEEP,
                dir -> {
                    AtomicFiles.writeString(dir.resolve("weights"), "new weights");
                    AtomicFiles.writeString(dir.resolve("config"), "new config");
                });
    }

    private static Map<String, String> expectedNew() {
        Map<String, String> out = new TreeMap<>();
        out.put("README.md", "kept");
        out.put("config", "new config");
        out.put("sub", "dir");
        out.put("sub/metrics.csv", "kept too");
        out.put("weights", "new weights");
        return out;
    }

    private static Map<String, String> expectedOld() {
        Map<String, String> out = new TreeMap<>();
        out.put("README.md", "kept");
        out.put("config", "old config");
        out.put("stale", "dropped by the new save");
        out.put("sub", "dir");
        out.put("sub/metrics.csv", "kept too");
        out.put("weights", "old weights");
        return out;
    }

    @Test
    void aSaveReplacesTheFilesItOwnsAndKeepsTheRest() throws IOException {
        Path target = prepareOld(root.resolve("adapter"));
        saveNew(target);
        assertEquals(expectedNew(), contents(target));
        assertEquals(List.of(), Crashes.leftovers(target));

        Path fresh = root.resolve("a/b/fresh");
        AtomicDirectory.replace(
                fresh, KEEP, dir -> AtomicFiles.writeString(dir.resolve("x"), "x"));
        assertEquals(Map.of("x", "x"), contents(fresh));
        assertEquals(List.of(), Crashes.leftovers(fresh));

        AtomicDirectory.replace(target, AtomicDirectory.KEEP_NOTHING, dir -> {});
        assertEquals(Map.of(), contents(target), "KEEP_NOTHING replaces everything");
    }

    @Test
    void killedAfterEveryStepTheNextLoadFindsTheOldOrTheNewDirectory() throws Exception {
        Path target = root.resolve("adapter");
        List<String> outcomes = new ArrayList<>();
        int steps =
                Crashes.killAtEveryStep(
                        () -> prepareOld(target),
                        () -> saveNew(target),
                        kill -> {
                            // another tool, which does not recover, sees no mix either
                            Map<String, String> raw = replaced(contents(target));
                            assertTrue(
                                    raw.isEmpty()
                                            || raw.equals(replaced(expectedOld()))
                                            || raw.equals(replaced(expectedNew())),
                                    "after " + kill.step + " a reader finds " + raw);
                            AtomicDirectory.recover(target);
                            Map<String, String> found = contents(target);
                            assertEquals(
                                    kill.committed ? expectedNew() : expectedOld(),
                                    found,
                                    "killed after " + kill.step);
                            assertEquals(List.of(), Crashes.leftovers(target), "" + kill.step);
                            outcomes.add(kill.step + (kill.committed ? ":new" : ":old"));
                        });
        assertTrue(steps >= 10, "steps: " + outcomes);
        assertTrue(outcomes.contains("MOVED_ASIDE:new"), outcomes.toString());
        assertTrue(outcomes.contains("CARRIED:new"), outcomes.toString());
        assertTrue(outcomes.contains("STAGED:old"), outcomes.toString());
    }

    @Test
    void killedAfterEveryStepTheNextSaveStartsFromTheOldOrTheNewDirectory() throws Exception {
        Path target = root.resolve("adapter");
        Crashes.killAtEveryStep(
                () -> prepareOld(target),
                () -> saveNew(target),
                kill -> {
                    AtomicDirectory.replace(
                            target, KEEP, dir -> AtomicFiles.writeString(dir.resolve("v"), "3"));
                    Map<String, String> expected = new TreeMap<>(expectedNew());
                    expected.remove("weights");
                    expected.remove("config");
                    expected.put("v", "3");
                    assertEquals(expected, contents(target), "killed after " + kill.step);
                    assertEquals(List.of(), Crashes.leftovers(target));
                });
    }

    @Test
    void aKillDuringRecoveryIsRecoveredTheSameWay() throws Exception {
        Path target = root.resolve("adapter");
        for (int first = 1; ; first++) {
            prepareOld(target);
            Kill kill = Crashes.killAfter(first, () -> saveNew(target));
            if (kill == null) {
                break;
            }
            Map<String, String> killedState = anonymous(Crashes.snapshot(root));
            for (int second = 1; ; second++) {
                restore(root, killedState, target, first);
                Kill again = Crashes.killAfter(second, () -> AtomicDirectory.recover(target));
                AtomicDirectory.recover(target);
                assertEquals(
                        kill.committed ? expectedNew() : expectedOld(),
                        contents(target),
                        "killed after step " + first + ", then in recovery after " + second);
                assertEquals(List.of(), Crashes.leftovers(target));
                if (again == null) {
                    break;
                }
            }
        }
    }

    @Test
    void withoutAnOldDirectoryAKilledSaveLeavesNothingOrTheNewDirectory() throws Exception {
        Path target = root.resolve("new");
        Crashes.killAtEveryStep(
                () -> clear(root),
                () -> saveNew(target),
                kill -> {
                    AtomicDirectory.recover(target);
                    Map<String, String> expected = new TreeMap<>();
                    if (kill.committed) {
                        expected.put("config", "new config");
                        expected.put("weights", "new weights");
                    }
                    assertEquals(expected, contents(target), "killed after " + kill.step);
                    assertEquals(kill.committed, Files.isDirectory(target));
                    assertEquals(List.of(), Crashes.leftovers(target));
                });
    }

    @Test
    void aDeletionKilledAfterEveryStepEndsWithTheDirectoryWholeOrGone() throws Exception {
        Path target = root.resolve("checkpoint-10");
        Crashes.killAtEveryStep(
                () -> prepareOld(target),
                () -> AtomicDirectory.delete(target),
                kill -> {
                    Map<String, String> raw = contents(target);
                    assertTrue(raw.isEmpty() || raw.equals(expectedOld()), raw.toString());
                    AtomicDirectory.recoverChildren(root);
                    assertFalse(Files.exists(target), "a deletion is done once renamed aside");
                    assertEquals(List.of(), Crashes.leftovers(target));
                });
    }

    @Test
    void aFullDiskFailsNamingTheFileAndLeavesTheDirectoryAsItWas() throws IOException {
        Path target = prepareOld(root.resolve("adapter"));
        IOException full;
        try (WriteSteps.Listening l = Crashes.fullDiskWhenWriting("config")) {
            full = assertThrows(IOException.class, () -> saveNew(target));
        }
        assertEquals(
                "cannot write "
                        + target.toRealPath().resolve("config")
                        + ": No space left on device; "
                        + target.toRealPath()
                        + " is unchanged",
                full.getMessage());
        assertEquals(expectedOld(), contents(target));
        assertEquals(List.of(), Crashes.leftovers(target), "a failed save cleans up at once");
    }

    @Test
    void aStaleLockOrTemporaryFromAKilledRunIsRemovedByTheNextRun() throws Exception {
        Path target = prepareOld(root.resolve("adapter"));
        Files.writeString(root.resolve(".adapter.lock"), "left by a killed process");
        assertTrue(AtomicDirectory.recover(target));
        assertEquals(List.of(), Crashes.leftovers(target));
        assertFalse(AtomicDirectory.recover(target), "nothing to do the second time");

        // a kill mid-write leaves the temporary file; the next write of that file removes it
        Path svg = root.resolve("out/loss.svg");
        Kill kill = Crashes.killAfter(1, () -> AtomicFiles.writeString(svg, "<svg/>"));
        assertEquals(WriteSteps.Step.FILE_WRITTEN, kill.step);
        assertEquals(1, Crashes.leftovers(svg.getParent()).size());
        AtomicFiles.writeString(svg, "<svg/>");
        assertEquals(List.of(), Crashes.leftovers(svg.getParent()));
    }

    @Test
    void onlyPeft4jsTemporaryFilesAreRemoved() throws IOException {
        Path dir = Files.createDirectories(root.resolve("out"));
        String[] ours = {".loss.svg5039485720394857201.tmp", ".metrics.csv.peft4j-0123456789abcdef.tmp"};
        String[] theirs = {"notes.tmp", ".hidden.tmp", ".a12.tmp", ".x.peft4j-xyz.tmp", "loss.svg"};
        for (String name : ours) {
            Files.writeString(dir.resolve(name), "");
        }
        for (String name : theirs) {
            Files.writeString(dir.resolve(name), "");
        }
        assertEquals(2, AtomicFiles.removeTemporaries(dir));
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(
                    Set.of(theirs),
                    Set.copyOf(left.map(p -> p.getFileName().toString()).toList()));
        }
    }

    @Test
    void aSymbolicLinkStaysALinkToTheReplacedDirectory() throws IOException {
        Path real = prepareOld(root.resolve("real"));
        Path link = Files.createSymbolicLink(root.resolve("link"), real.getFileName());
        saveNew(link);
        assertTrue(Files.isSymbolicLink(link));
        assertEquals(expectedNew(), contents(real));
    }

    @Test
    void aFileIsNotADirectoryToSaveInto() throws IOException {
        Path file = Files.writeString(root.resolve("file"), "mine");
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> saveNew(file));
        assertEquals(
                file + " is a file, not a directory; give a directory to save into",
                e.getMessage());
        assertEquals("mine", Files.readString(file));
    }

    @Test
    void aSaveInsideAnotherSavesStagingDirectoryWritesInPlace() throws IOException {
        Path target = root.resolve("checkpoint-5");
        AtomicDirectory.replace(
                target,
                AtomicDirectory.KEEP_NOTHING,
                dir -> {
                    AtomicDirectory.replace(
                            dir, KEEP, in -> AtomicFiles.writeString(in.resolve("a"), "a"));
                    AtomicFiles.writeString(dir.resolve("b"), "b");
                });
        assertEquals(Map.of("a", "a", "b", "b"), contents(target));
        assertEquals(List.of(), Crashes.leftovers(target));
    }

    @Test
    void ranksWriteTheirFilesIntoOneStagingDirectoryAndRankZeroSwaps() throws Exception {
        Path target = prepareOld(root.resolve("sharded"));
        CyclicBarrier barrier = new CyclicBarrier(2);
        Runnable await =
                () -> {
                    try {
                        barrier.await();
                    } catch (Exception e) {
                        throw new IllegalStateException(e);
                    }
                };
        ExecutorService ranks = Executors.newFixedThreadPool(2);
        try {
            List<Future<Object>> done = new ArrayList<>();
            for (int rank = 0; rank < 2; rank++) {
                int r = rank;
                done.add(
                        ranks.submit(
                                () -> {
                                    AtomicDirectory.replace(
                                            target,
                                            KEEP,
                                            r,
                                            await,
                                            dir ->
                                                    AtomicFiles.writeString(
                                                            dir.resolve("shard" + r), "" + r));
                                    // every rank returns after the swap
                                    assertEquals("" + (1 - r), read(target, "shard" + (1 - r)));
                                    return null;
                                }));
            }
            for (Future<Object> f : done) {
                f.get();
            }
        } finally {
            ranks.shutdownNow();
        }
        Map<String, String> expected = new TreeMap<>();
        expected.put("README.md", "kept");
        expected.put("shard0", "0");
        expected.put("shard1", "1");
        expected.put("sub", "dir");
        expected.put("sub/metrics.csv", "kept too");
        assertEquals(expected, contents(target));
        assertEquals(List.of(), Crashes.leftovers(target));
    }

    /** The files the save replaces (weights, config, stale), as another tool would read them. */
    private static Map<String, String> replaced(Map<String, String> all) {
        Map<String, String> out = new TreeMap<>(all);
        out.keySet().removeIf(n -> KEEP.test(n) || n.startsWith("sub/") || n.startsWith("."));
        return out;
    }

    /** A directory's files by relative path, text content ("dir" for directories). */
    private static Map<String, String> contents(Path dir) throws IOException {
        Map<String, String> out = new TreeMap<>();
        if (!Files.isDirectory(dir)) {
            return out;
        }
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) files::iterator) {
                if (!p.equals(dir)) {
                    out.put(
                            dir.relativize(p).toString(),
                            Files.isDirectory(p) ? "dir" : Files.readString(p));
                }
            }
        }
        return out;
    }

    private static String read(Path dir, String name) throws IOException {
        return Files.readString(dir.resolve(name));
    }

    private static void clear(Path dir) throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                if (!p.equals(dir)) {
                    Files.delete(p);
                }
            }
        }
    }

    /** Puts back the state a kill left, by replaying the kill (snapshots hold digests only). */
    private void restore(Path dir, Map<String, String> state, Path target, int step)
            throws Exception {
        prepareOld(target);
        Crashes.killAfter(step, () -> saveNew(target));
        assertEquals(state, anonymous(Crashes.snapshot(dir)), "the kill is reproducible");
    }

    /** Temporary files draw their names at random. */
    private static Map<String, String> anonymous(Map<String, String> snapshot) {
        Map<String, String> out = new TreeMap<>();
        snapshot.forEach((k, v) -> out.put(k.replaceAll("peft4j-[0-9a-f]{16}", "peft4j-X"), v));
        return out;
    }
}
