package org.peft4j.core.io;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * Writes files so that a reader sees either the old file or the whole new one: the bytes go to a
 * temporary file in the same directory, are forced to disk, and the temporary file is renamed over
 * the target. A crash mid-write leaves the old file as it was.
 */
public final class AtomicFiles {

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
     * @throws IOException if writing or renaming fails; the target is then unchanged
     */
    public static void write(Path target, ChannelWriter writer) throws IOException {
        Path absolute = target.toAbsolutePath();
        Path dir = absolute.getParent();
        Files.createDirectories(dir);
        Path temp = Files.createTempFile(dir, "." + absolute.getFileName(), ".tmp");
        try {
            try (FileChannel channel =
                    FileChannel.open(
                            temp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                writer.write(channel);
                channel.force(true);
            }
            try {
                Files.move(
                        temp,
                        absolute,
                        StandardCopyOption.ATOMIC_MOVE,
                        StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(temp, absolute, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(temp);
        }
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
}
