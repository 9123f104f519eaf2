package org.peft4j.core.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Replaces a directory as a whole: whenever the writer is killed, the directory is afterwards the
 * old one or the new one, never a mix of their files, once the next save or load of it has run
 * {@link #recover}. A reader that does not recover (another tool) finds the old directory, the new
 * one, or, only if the writer was killed between the two renames below, no directory.
 *
 * <p>The protocol, for a target {@code parent/name}; every step is a {@link WriteSteps.Step}:
 *
 * <ol>
 *   <li>lock {@code parent/.name.lock} (an operating-system lock, which a killed holder releases)
 *       and recover an interrupted earlier replacement;
 *   <li><b>stage</b> ({@code STAGED}): the files are written into {@code parent/.name.staging}, then
 *       every file and directory in it is forced to disk;
 *   <li><b>commit</b> ({@code COMMITTED}): the mark {@code .peft4j-complete} is written into the
 *       staging directory (atomically), listing the entries of the old directory to keep. This is
 *       the point of no return: before it recovery undoes, after it recovery finishes;
 *   <li><b>move aside</b> ({@code MOVED_ASIDE}): {@code name} is renamed to {@code .name.old}, when
 *       there is one;
 *   <li><b>swap</b> ({@code SWAPPED}): {@code .name.staging} is renamed to {@code name};
 *   <li><b>carry</b> ({@code CARRIED}, per entry): each kept entry moves from {@code .name.old}
 *       into {@code name};
 *   <li><b>unmark</b> ({@code UNMARKED}): the mark is deleted;
 *   <li><b>discard</b> ({@code REMOVED}, per entry): {@code .name.old} is deleted, then the lock
 *       file.
 * </ol>
 *
 * <p>Recovery reads the state from what exists and repeats one rule until none applies, so that a
 * kill during recovery is recovered the same way:
 *
 * <table>
 *   <caption>What recovery does</caption>
 *   <tr><th>found</th><th>killed</th><th>action</th></tr>
 *   <tr><td>{@code .name.deleted}</td><td>in {@link #delete}</td><td>delete it</td></tr>
 *   <tr><td>staging without the mark</td><td>in 2 or 3</td><td>delete it: the old directory
 *       stands (undo)</td></tr>
 *   <tr><td>{@code name} with the mark</td><td>in 5 to 7</td><td>carry what is still in {@code
 *       .name.old}, unmark</td></tr>
 *   <tr><td>{@code name} and {@code .name.old}</td><td>in 8</td><td>delete {@code
 *       .name.old}</td></tr>
 *   <tr><td>marked staging and {@code name}</td><td>after 3</td><td>move aside</td></tr>
 *   <tr><td>marked staging, no {@code name}</td><td>in 4 or 5 (or there was no old
 *       directory)</td><td>swap</td></tr>
 *   <tr><td>only {@code .name.old}</td><td>(the staging directory was deleted by hand)</td><td>rename
 *       it back</td></tr>
 * </table>
 *
 * <p>The entries to keep are chosen by the caller (an adapter save keeps whatever is not an
 * adapter file; {@link #KEEP_NOTHING} replaces everything); peft4j's temporary files ({@link
 * AtomicFiles}) are never kept. The new directory gets the default permissions (umask).
 *
 * <p>A save that {@link #replace} runs inside another one's staging directory writes in place: the
 * enclosing replacement makes it atomic (a training checkpoint holds an adapter, say). One save of
 * a directory at a time: the lock keeps a concurrent save or recovery out.
 */
public final class AtomicDirectory {

    /** Keeps no entry of the old directory: the new one replaces it entirely. */
    public static final Predicate<String> KEEP_NOTHING = name -> false;

    /** The completion mark in a committed staging directory. */
    static final String MARK = ".peft4j-complete";

    private static final String STAGING = "staging";
    private static final String OLD = "old";
    private static final String DELETED = "deleted";
    private static final String LOCK = "lock";
    private static final Pattern SIBLING = Pattern.compile("\\.(.+)\\.(staging|old|deleted|lock)");
    private static final int MAX_RULES = 32;
    private static final int MAX_LINKS = 40;
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Staging directories being written by this process, for saves nested in a save. */
    private static final Set<Path> ACTIVE = ConcurrentHashMap.newKeySet();

    /** Writes the new directory's content. */
    @FunctionalInterface
    public interface Contents {

        /**
         * Writes the files.
         *
         * @param dir the staging directory, existing and empty (on every rank of a collective
         *     replacement, the same directory)
         * @throws IOException if writing fails
         */
        void write(Path dir) throws IOException;
    }

    private AtomicDirectory() {}

    /**
     * Replaces a directory with the files {@code contents} writes, in one process.
     *
     * @param target the directory; created when missing (with its parents)
     * @param keep which entries of the old directory, by name, the new one keeps (unless it has an
     *     entry of that name)
     * @param contents writes the new files
     * @throws IOException if writing fails: before the commit the directory is unchanged, after it
     *     the next save or load completes the replacement; the message names the file and the
     *     directory (paths in the staging directory are reported under the target's name)
     * @throws IllegalArgumentException if the target is a file
     */
    public static void replace(Path target, Predicate<String> keep, Contents contents)
            throws IOException {
        replace(target, keep, 0, () -> {}, contents);
    }

    /**
     * Replaces a directory as a collective of several processes that share it (the ranks of a
     * tensor-parallel group), each writing some of the files. Every rank calls it with the same
     * arguments: rank 0 locks, recovers and creates the staging directory; after a barrier every
     * rank writes its files; after a barrier rank 0 commits and swaps; after a last barrier every
     * rank returns. A rank that fails ends the job (mpirun stops the others) and leaves an
     * uncommitted staging directory, which the next save or load deletes.
     *
     * @param target the directory, the same path on every rank
     * @param keep which entries of the old directory the new one keeps; rank 0's decides
     * @param rank this process's rank; rank 0 does the renames
     * @param barrier waits until every rank has called it
     * @param contents writes this rank's files
     * @throws IOException as {@link #replace(Path, Predicate, Contents)}
     * @throws IllegalArgumentException if the target is a file
     */
    public static void replace(
            Path target, Predicate<String> keep, int rank, Runnable barrier, Contents contents)
            throws IOException {
        Path dir = resolve(target);
        checkNotFile(dir, target);
        if (isNested(dir)) {
            Files.createDirectories(dir);
            contents.write(dir);
            return;
        }
        Path staging = sibling(dir, STAGING);
        if (rank != 0) {
            barrier.run();
            ACTIVE.add(staging);
            try {
                contents.write(staging);
                barrier.run();
            } finally {
                ACTIVE.remove(staging);
            }
            barrier.run();
            return;
        }
        Files.createDirectories(dir.getParent());
        DirectoryLock lock = DirectoryLock.acquire(sibling(dir, LOCK));
        try {
            settle(dir);
            Files.createDirectory(staging);
            ACTIVE.add(staging);
            boolean committed = false;
            try {
                barrier.run();
                contents.write(staging);
                barrier.run();
                commit(dir, staging, keep);
                committed = true;
                settle(dir);
            } catch (IOException | RuntimeException e) {
                try {
                    settle(dir); // undoes an uncommitted staging, finishes a committed one
                } catch (IOException | RuntimeException suppressed) {
                    e.addSuppressed(suppressed);
                }
                if (e instanceof IOException) {
                    throw describe((IOException) e, dir, staging, committed);
                }
                throw e;
            } finally {
                ACTIVE.remove(staging);
            }
        } finally {
            lock.close();
        }
        barrier.run();
    }

    /**
     * Finishes or undoes an interrupted replacement or deletion of a directory, as the table above
     * says. Loading calls it first; it costs a few {@code stat} calls when there is nothing to do,
     * and writes only when there is.
     *
     * @param target the directory (it may be missing: an interrupted swap leaves it so)
     * @return whether there was something to recover
     * @throws IOException if the directory cannot be recovered (its parent is read-only, say); the
     *     message names it
     */
    public static boolean recover(Path target) throws IOException {
        Path dir = resolve(target);
        if (dir.getParent() == null || isNested(dir) || !interrupted(dir)) {
            return false;
        }
        try {
            DirectoryLock lock = DirectoryLock.acquire(sibling(dir, LOCK));
            try {
                settle(dir);
            } finally {
                lock.close();
            }
        } catch (IOException e) {
            throw new IOException(
                    "cannot recover the interrupted save of " + dir + ": " + e.getMessage(), e);
        }
        return true;
    }

    /**
     * Recovers every interrupted replacement or deletion of an entry of a directory (a training
     * run's {@code checkpoint-N}, say).
     *
     * @param parent the directory; nothing happens when it does not exist
     * @return how many entries were recovered
     * @throws IOException if one cannot be recovered
     */
    public static int recoverChildren(Path parent) throws IOException {
        if (!Files.isDirectory(parent)) {
            return 0;
        }
        Set<Path> targets = new java.util.TreeSet<>();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(parent)) {
            for (Path entry : entries) {
                Matcher sibling = SIBLING.matcher(entry.getFileName().toString());
                if (sibling.matches()) {
                    targets.add(entry.resolveSibling(sibling.group(1)));
                } else if (Files.exists(entry.resolve(MARK), LinkOption.NOFOLLOW_LINKS)) {
                    targets.add(entry);
                }
            }
        }
        int recovered = 0;
        for (Path target : targets) {
            recovered += recover(target) ? 1 : 0;
        }
        return recovered;
    }

    /**
     * Deletes a directory so that it is either all there or gone: it is renamed to {@code
     * .name.deleted} first, then deleted; a kill in between is finished by the next recovery.
     *
     * @param target the directory; nothing happens when it does not exist
     * @throws IOException if it cannot be deleted
     * @throws IllegalArgumentException if the target is a file
     */
    public static void delete(Path target) throws IOException {
        Path dir = resolve(target);
        checkNotFile(dir, target);
        if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS) && !interrupted(dir)) {
            return;
        }
        DirectoryLock lock = DirectoryLock.acquire(sibling(dir, LOCK));
        try {
            settle(dir);
            if (Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
                Path deleted = sibling(dir, DELETED);
                move(dir, deleted);
                WriteSteps.reached(WriteSteps.Step.MOVED_ASIDE, dir);
                removeTree(deleted);
            }
        } finally {
            lock.close();
        }
    }

    /** Writes the mark that commits the staging directory, after forcing everything to disk. */
    private static void commit(Path dir, Path staging, Predicate<String> keep) throws IOException {
        syncTree(staging);
        WriteSteps.reached(WriteSteps.Step.STAGED, dir);
        ArrayNode carry = JSON.createArrayNode();
        if (Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
            try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
                for (Path entry : entries) {
                    String name = entry.getFileName().toString();
                    if (keep.test(name)
                            && !name.equals(MARK)
                            && !AtomicFiles.isTemporary(name)
                            && !Files.exists(staging.resolve(name), LinkOption.NOFOLLOW_LINKS)) {
                        carry.add(name);
                    }
                }
            }
        }
        AtomicFiles.writeString(
                staging.resolve(MARK), JSON.createObjectNode().set("keep", carry) + "\n");
        WriteSteps.reached(WriteSteps.Step.COMMITTED, dir);
    }

    /** Applies recovery rules until the directory is settled (see the class documentation). */
    private static void settle(Path dir) throws IOException {
        Path staging = sibling(dir, STAGING);
        Path old = sibling(dir, OLD);
        Path deleted = sibling(dir, DELETED);
        for (int i = 0; i < MAX_RULES; i++) {
            boolean staged = Files.isDirectory(staging, LinkOption.NOFOLLOW_LINKS);
            boolean complete = staged && Files.exists(staging.resolve(MARK));
            boolean present = Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS);
            boolean marked = present && Files.exists(dir.resolve(MARK));
            boolean aside = Files.isDirectory(old, LinkOption.NOFOLLOW_LINKS);
            if (Files.exists(deleted, LinkOption.NOFOLLOW_LINKS)) {
                removeTree(deleted);
            } else if (staged && !complete) {
                removeTree(staging);
            } else if (marked) {
                carry(dir, old);
                Files.delete(dir.resolve(MARK));
                AtomicFiles.syncDirectory(dir);
                WriteSteps.reached(WriteSteps.Step.UNMARKED, dir);
            } else if (aside && present) {
                removeTree(old);
            } else if (complete && present) {
                move(dir, old);
                WriteSteps.reached(WriteSteps.Step.MOVED_ASIDE, dir);
            } else if (complete) {
                move(staging, dir);
                WriteSteps.reached(WriteSteps.Step.SWAPPED, dir);
            } else if (aside) {
                move(old, dir);
                WriteSteps.reached(WriteSteps.Step.RESTORED, dir);
            } else {
                return;
            }
        }
        throw new IOException(
                "cannot recover "
                        + dir
                        + ": its staging and old directories keep changing; is another process"
                        + " saving it?");
    }

    /** Moves the entries the mark lists from the old directory into the new one. */
    private static void carry(Path dir, Path old) throws IOException {
        if (!Files.isDirectory(old, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        JsonNode mark = JSON.readTree(Files.readString(dir.resolve(MARK)));
        for (JsonNode entry : mark.path("keep")) {
            String name = entry.asText();
            if (name.isEmpty() || name.contains("/") || name.equals(".") || name.equals("..")) {
                continue; // not an entry name; the mark is ours, but never follow a path out
            }
            Path from = old.resolve(name);
            Path to = dir.resolve(name);
            if (Files.exists(from, LinkOption.NOFOLLOW_LINKS)
                    && !Files.exists(to, LinkOption.NOFOLLOW_LINKS)) {
                Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
                WriteSteps.reached(WriteSteps.Step.CARRIED, to);
            }
        }
        AtomicFiles.syncDirectory(dir);
    }

    private static boolean interrupted(Path dir) {
        for (String kind : new String[] {STAGING, OLD, DELETED, LOCK}) {
            if (Files.exists(sibling(dir, kind), LinkOption.NOFOLLOW_LINKS)) {
                return true;
            }
        }
        return Files.exists(dir.resolve(MARK), LinkOption.NOFOLLOW_LINKS);
    }

    private static boolean isNested(Path dir) {
        for (Path staging : ACTIVE) {
            if (dir.startsWith(staging)) {
                return true;
            }
        }
        return false;
    }

    /**
     * The directory the renames act on: absolute, its parent's real path, and a symbolic link
     * followed to the directory it names (renaming the link would leave that directory stale).
     */
    private static Path resolve(Path target) throws IOException {
        Path path = target.toAbsolutePath().normalize();
        for (int i = 0; i < MAX_LINKS && Files.isSymbolicLink(path); i++) {
            path = path.resolveSibling(Files.readSymbolicLink(path)).normalize();
        }
        if (path.getFileName() == null) {
            throw new IllegalArgumentException("cannot replace the root directory " + path);
        }
        Path parent = path.getParent();
        return Files.isDirectory(parent) ? parent.toRealPath().resolve(path.getFileName()) : path;
    }

    private static void checkNotFile(Path dir, Path target) {
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            throw new IllegalArgumentException(
                    target + " is a file, not a directory; give a directory to save into");
        }
    }

    private static Path sibling(Path dir, String kind) {
        return dir.resolveSibling("." + dir.getFileName() + "." + kind);
    }

    private static void move(Path from, Path to) throws IOException {
        // no REPLACE_EXISTING: the rules only rename onto a name that is free
        Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
        AtomicFiles.syncDirectory(to.getParent());
    }

    /** Forces every file and directory under a directory to disk. */
    private static void syncTree(Path root) throws IOException {
        Files.walkFileTree(
                root,
                new SimpleFileVisitor<>() {
                    @Override
                    public FileVisitResult visitFile(Path file, BasicFileAttributes attrs)
                            throws IOException {
                        if (attrs.isRegularFile()) {
                            try (FileChannel channel =
                                    FileChannel.open(file, StandardOpenOption.READ)) {
                                channel.force(true);
                            }
                        }
                        return FileVisitResult.CONTINUE;
                    }

                    @Override
                    public FileVisitResult postVisitDirectory(Path dir, IOException e) {
                        AtomicFiles.syncDirectory(dir);
                        return FileVisitResult.CONTINUE;
                    }
                });
    }

    /** Deletes a tree, symbolic links as links; a kill part-way leaves a smaller tree. */
    private static void removeTree(Path root) throws IOException {
        Files.walkFileTree(
                root,
                new SimpleFileVisitor<>() {
                    @Override
                    public FileVisitResult visitFile(Path file, BasicFileAttributes attrs)
                            throws IOException {
                        Files.deleteIfExists(file);
                        WriteSteps.reached(WriteSteps.Step.REMOVED, file);
                        return FileVisitResult.CONTINUE;
                    }

                    @Override
                    public FileVisitResult visitFileFailed(Path file, IOException e)
                            throws IOException {
                        if (e instanceof NoSuchFileException) {
                            return FileVisitResult.CONTINUE;
                        }
                        throw e;
                    }

                    @Override
                    public FileVisitResult postVisitDirectory(Path dir, IOException e)
                            throws IOException {
                        if (e != null) {
                            throw e;
                        }
                        Files.deleteIfExists(dir);
                        WriteSteps.reached(WriteSteps.Step.REMOVED, dir);
                        return FileVisitResult.CONTINUE;
                    }
                });
        AtomicFiles.syncDirectory(root.getParent());
    }

    /** Names the target rather than the staging directory, and says what state it is in. */
    private static IOException describe(
            IOException e, Path dir, Path staging, boolean committed) {
        String message = String.valueOf(e.getMessage()).replace(staging.toString(), dir.toString());
        String state;
        if (committed) {
            state = "the new " + dir + " is complete and the next save or load of it finishes"
                    + " replacing it";
        } else if (Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
            state = dir + " is unchanged";
        } else {
            state = dir + " was not created"; // the failed save was its first
        }
        return new IOException(message + "; " + state, e);
    }

    /** For tests of the naming: the sibling directories a replacement of {@code dir} uses. */
    static List<Path> siblings(Path dir) {
        List<Path> out = new ArrayList<>();
        for (String kind : new String[] {STAGING, OLD, DELETED, LOCK}) {
            out.add(sibling(dir, kind));
        }
        return out;
    }
}
