package org.peft4j.core.testing;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.peft4j.core.io.WriteSteps;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Kills writers at a chosen step (through {@link WriteSteps}, not timing) and compares directories,
 * for the tests of all-or-nothing saves.
 */
public final class Crashes {

    /**
     * peft4j's leftovers: the siblings of a replaced directory, its completion mark, temporary
     * files (stated here from the documented naming, not taken from the code under test).
     */
    private static final Pattern LEFTOVER =
            Pattern.compile(
                    "\\..+\\.(staging|old|deleted|lock)|\\.peft4j-complete"
                            + "|\\..+(\\.peft4j-[0-9a-f]{16}|[0-9]{8,20})\\.tmp");

    private Crashes() {}

    /** What a listener throws to stop a writer as a kill would: an Error, so nothing cleans up. */
    public static final class Kill extends Error {

        private static final long serialVersionUID = 1L;

        /** The step the writer was killed after. */
        public final transient WriteSteps.Step step;

        /** Whether a directory had been committed before the kill. */
        public final boolean committed;

        Kill(WriteSteps.Step step, boolean committed) {
            super("killed after " + step);
            this.step = step;
            this.committed = committed;
        }
    }

    /** An action on files. */
    @FunctionalInterface
    public interface IOAction {

        /**
         * Runs.
         *
         * @throws Exception if it fails
         */
        void run() throws Exception;
    }

    /** Checks the state after a kill and the recovery that followed. */
    @FunctionalInterface
    public interface Check {

        /**
         * Checks.
         *
         * @param kill where the writer was killed
         * @throws Exception if the check fails
         */
        void check(Kill kill) throws Exception;
    }

    /**
     * Runs an action with a kill after its n-th write step.
     *
     * @param n the step, from 1
     * @param action the writer
     * @return the kill, or {@code null} when the action finished in fewer steps
     * @throws Exception if the action fails otherwise
     */
    public static Kill killAfter(int n, IOAction action) throws Exception {
        return killAfter(n, (step, path) -> {}, action);
    }

    /**
     * Runs an action with a kill after its n-th write step, telling an observer of every step up
     * to the kill (to record what the writer had done by then).
     *
     * @param n the step, from 1
     * @param observer told of each step before the kill is decided
     * @param action the writer
     * @return the kill, or {@code null} when the action finished in fewer steps
     * @throws Exception if the action fails otherwise
     */
    public static Kill killAfter(int n, WriteSteps.Listener observer, IOAction action)
            throws Exception {
        int[] seen = {0};
        boolean[] committed = {false};
        try (WriteSteps.Listening listening =
                WriteSteps.listen(
                        (step, path) -> {
                            observer.reached(step, path);
                            // the mark's rename is the commit point
                            committed[0] |=
                                    step == WriteSteps.Step.FILE_REPLACED
                                            && path.getFileName()
                                                    .toString()
                                                    .equals(".peft4j-complete");
                            if (++seen[0] == n) {
                                throw new Kill(step, committed[0]);
                            }
                        })) {
            action.run();
            return null;
        } catch (Kill kill) {
            return kill;
        }
    }

    /**
     * For n = 1, 2, ...: prepares, runs the save killed after its n-th step, then runs the check
     * (which runs the next load or save and compares); stops when the save finishes before step n.
     *
     * @param prepare puts the old state in place
     * @param save the writer
     * @param check runs recovery and checks the result
     * @return the number of steps of an uninterrupted save
     * @throws Exception if a check fails
     */
    public static int killAtEveryStep(IOAction prepare, IOAction save, Check check)
            throws Exception {
        for (int n = 1; ; n++) {
            prepare.run();
            Kill kill = killAfter(n, save);
            if (kill == null) {
                assertTrue(n > 1, "the save took no step");
                return n - 1;
            }
            check.check(kill);
        }
    }

    /**
     * Returns every file and directory under a directory, with a digest of each file's bytes.
     *
     * @param dir the directory
     * @return relative path to digest ({@code "dir"} for a directory), sorted; empty when missing
     */
    public static Map<String, String> snapshot(Path dir) {
        Map<String, String> out = new TreeMap<>();
        if (!Files.exists(dir)) {
            return out;
        }
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) files::iterator) {
                if (p.equals(dir)) {
                    continue;
                }
                String name = dir.relativize(p).toString();
                out.put(
                        name,
                        Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)
                                ? "dir"
                                : HexFormat.of()
                                        .formatHex(
                                                MessageDigest.getInstance("SHA-256")
                                                        .digest(Files.readAllBytes(p))));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        return out;
    }

    /**
     * Makes every write of a file of the given name fail as a full disk fails it (the JDK's bare
     * {@code IOException: No space left on device}), after its bytes went to the temporary file,
     * until the returned scope is closed.
     *
     * @param fileName the file's name, without directory
     * @return the scope
     */
    public static WriteSteps.Listening fullDiskWhenWriting(String fileName) {
        return WriteSteps.listen(
                (step, path) -> {
                    if (step == WriteSteps.Step.FILE_WRITTEN
                            && path.getFileName().toString().equals(fileName)) {
                        throw new IOException("No space left on device");
                    }
                });
    }

    /**
     * Deletes a directory tree, to put an old state in place before the next save.
     *
     * @param dir the directory; nothing happens when it does not exist
     * @throws IOException if a file cannot be deleted
     */
    public static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    /**
     * Lists peft4j's leftovers in a directory and beside it: staging, old, deleted and lock
     * siblings, completion marks, temporary files.
     *
     * @param dir the directory
     * @return their paths; empty when there are none
     */
    public static List<String> leftovers(Path dir) {
        List<String> out = new ArrayList<>();
        for (Path root : new Path[] {dir.toAbsolutePath().getParent(), dir}) {
            if (!Files.isDirectory(root)) {
                continue;
            }
            try (Stream<Path> files = root.equals(dir) ? Files.walk(root) : Files.list(root)) {
                files.filter(p -> LEFTOVER.matcher(p.getFileName().toString()).matches())
                        .forEach(p -> out.add(p.toString()));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return out;
    }
}
