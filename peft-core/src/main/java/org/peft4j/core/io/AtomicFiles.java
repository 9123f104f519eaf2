package org.peft4j.core.io;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Writes files so that a reader sees either the old file or the whole new one: the bytes go to a
 * temporary file in the same directory ({@code .<name>.peft4j-<random>.tmp}), are forced to disk,
 * and the temporary file is renamed over the target. A crash mid-write leaves the old file as it
 * was; the temporary file it leaves is removed by the next write of the same file (or by {@link
 * #removeTemporaries(Path)}).
 *
 * <p>Files are created as {@code new FileOutputStream} creates them, with the permissions the
 * process's umask leaves ({@code 0644} under umask {@code 022}), not the {@code 0600} of {@link
 * Files#createTempFile}, so that saved adapters and checkpoints can be shared.
 */
public final class AtomicFiles {

    /**
     * peft4j's temporary files: {@code .<name>.peft4j-<16 hex>.tmp}, and {@code .<name><digits>.tmp}
     * of earlier versions (which used {@link Files#createTempFile}).
     */
    private static final Pattern TEMPORARY =
            Pattern.compile("\\.(.+?)(?:\\.peft4j-[0-9a-f]{16}|[0-9]{8,20})\\.tmp");

    private static final SecureRandom RANDOM = new SecureRandom();

    /** Writes the content of a file to a channel. */
    @FunctionalInterface
    public interface ChannelWriter {

        /**
         * Writes the whole content.
         *
         * @param channel an empty file opened for writing
         * @throws IOException if writing fails
         */
        void write(FileChannel channel) throws IOException;
    }

    private AtomicFiles() {}

    /**
     * Replaces {@code target} with the bytes the writer produces.
     *
     * @param target the file to create or replace; its directory is created when missing
     * @param writer produces the new content
     * @throws IOException if writing or renaming fails; the target is then unchanged, and the
     *     message names it (a full disk says {@code cannot write <target>: No space left on
     *     device})
     */
    public static void write(Path target, ChannelWriter writer) throws IOException {
        Path absolute = target.toAbsolutePath();
        Path dir = absolute.getParent();
        Files.createDirectories(dir);
        String name = absolute.getFileName().toString();
        removeTemporaries(dir, name);
        Path temp = null;
        try {
            FileChannel channel = null;
            while (channel == null) {
                temp = dir.resolve(temporaryName(name));
                try {
                    // no file attributes: the mode is 0666 less the umask, as for any new file
                    channel =
                            FileChannel.open(
                                    temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
                } catch (FileAlreadyExistsException e) {
                    channel = null; // drawn twice; draw again
                }
            }
            try (FileChannel open = channel) {
                writer.write(open);
                WriteSteps.reached(WriteSteps.Step.FILE_WRITTEN, absolute);
                open.force(true);
            }
            move(temp, absolute);
            syncDirectory(dir);
        } catch (IOException | RuntimeException e) {
            // a failed write cleans up; a kill (or an Error) leaves the temporary file behind
            if (temp != null) {
                try {
                    Files.deleteIfExists(temp);
                } catch (IOException suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            if (e instanceof IOException) {
                throw naming((IOException) e, absolute);
            }
            throw e;
        }
        WriteSteps.reached(WriteSteps.Step.FILE_REPLACED, absolute);
    }

    /**
     * Replaces {@code target} with the given text in UTF-8.
     *
     * @param target the file to create or replace
     * @param text the new content
     * @throws IOException if writing fails; the target is then unchanged
     */
    public static void writeString(Path target, String text) throws IOException {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        write(
                target,
                channel -> {
                    OutputStream out = Channels.newOutputStream(channel);
                    out.write(bytes);
                    out.flush();
                });
    }

    /**
     * Replaces {@code target} with a copy of {@code source}'s bytes. Unlike {@link Files#copy}, the
     * copy gets the permissions of a new file, not the source's.
     *
     * @param source the file to copy
     * @param target the file to create or replace
     * @throws IOException if reading or writing fails; the target is then unchanged
     */
    public static void copy(Path source, Path target) throws IOException {
        try (FileChannel in = FileChannel.open(source, StandardOpenOption.READ)) {
            write(
                    target,
                    out -> {
                        long size = in.size();
                        long done = 0;
                        while (done < size) {
                            long n = out.transferFrom(in, done, size - done);
                            if (n <= 0) {
                                throw new IOException(
                                        source + " shrank to " + done + " bytes while copied");
                            }
                            done += n;
                        }
                    });
        }
    }

    /**
     * Removes the temporary files that killed writes left in a directory: only files named as
     * this class names them, {@code .<name>.peft4j-<16 hex>.tmp} (or {@code .<name><digits>.tmp},
     * the naming of earlier versions). Call it where no other write into the directory runs.
     *
     * @param dir the directory; nothing happens when it does not exist
     * @return how many files were removed
     * @throws IOException if the directory cannot be listed or a file removed
     */
    public static int removeTemporaries(Path dir) throws IOException {
        return removeTemporaries(dir, null);
    }

    /** Whether a name is one of this class's temporary files. */
    static boolean isTemporary(String name) {
        return TEMPORARY.matcher(name).matches();
    }

    /** Removes the temporary files of one target name, or of any when {@code name} is null. */
    private static int removeTemporaries(Path dir, String name) throws IOException {
        int removed = 0;
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir, ".*.tmp")) {
            for (Path entry : entries) {
                Matcher m = TEMPORARY.matcher(entry.getFileName().toString());
                if (m.matches()
                        && (name == null || m.group(1).equals(name))
                        && Files.isRegularFile(entry, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                    removed += Files.deleteIfExists(entry) ? 1 : 0;
                }
            }
        } catch (NoSuchFileException e) {
            return 0;
        }
        return removed;
    }

    private static String temporaryName(String name) {
        return String.format(Locale.ROOT, ".%s.peft4j-%016x.tmp", name, RANDOM.nextLong());
    }

    private static void move(Path from, Path to) throws IOException {
        try {
            Files.move(
                    from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /**
     * Forces a directory's entries to disk, so that a rename in it survives a power loss; where a
     * directory cannot be opened (not on Linux or macOS), the rename is as durable as the file
     * system makes it.
     */
    static void syncDirectory(Path dir) {
        try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
            channel.force(true);
        } catch (IOException e) {
            // best effort, see above
        }
    }

    /**
     * Names the file in a failure that does not (the JDK reports a full disk as a bare {@code
     * IOException: No space left on device}).
     */
    private static IOException naming(IOException e, Path file) {
        if (e instanceof FileSystemException && ((FileSystemException) e).getFile() != null) {
            return e;
        }
        return new IOException("cannot write " + file + ": " + e.getMessage(), e);
    }
}
