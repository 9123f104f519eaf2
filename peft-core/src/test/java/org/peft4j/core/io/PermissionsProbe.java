package org.peft4j.core.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * The main class {@link AtomicFilesPermissionsTest} starts under a given umask: writes a file, a
 * copy of a private file and a replaced directory the way saves do.
 */
public final class PermissionsProbe {

    private PermissionsProbe() {}

    /**
     * Writes {@code file}, {@code copy} and {@code dir/inner} into a directory.
     *
     * @param args the directory
     * @throws IOException if writing fails
     */
    public static void main(String[] args) throws IOException {
        Path root = Paths.get(args[0]);
        AtomicFiles.writeString(root.resolve("file"), "text");
        Path secret = Files.writeString(root.resolve("private"), "source");
        Files.setPosixFilePermissions(secret, PosixFilePermissions.fromString("rw-------"));
        AtomicFiles.copy(secret, root.resolve("copy"));
        AtomicDirectory.replace(
                root.resolve("dir"),
                AtomicDirectory.KEEP_NOTHING,
                d -> AtomicFiles.writeString(d.resolve("inner"), "text"));
    }
}
