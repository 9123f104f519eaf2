package org.peft4j.core.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Files and directories peft4j writes get the permissions the umask leaves, as a plain {@code new
 * FileOutputStream} and {@code mkdir} get them: {@code 0644} and {@code 0755} under umask {@code
 * 022}, not the {@code 0600} of a temporary file.
 */
class AtomicFilesPermissionsTest {

    @TempDir Path dir;

    private static String mode(Path p) throws IOException {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(p));
    }

    @Test
    void filesAndDirectoriesGetWhatTheUmaskLeavesInThisProcess() throws IOException {
        assumeTrue(FileSystems.getDefault().supportedFileAttributeViews().contains("posix"));
        Path probe = dir.resolve("probe");
        new FileOutputStream(probe.toFile()).close();
        Path probeDir = Files.createDirectory(dir.resolve("probe-dir"));

        AtomicFiles.writeString(dir.resolve("config.json"), "{}");
        assertEquals(mode(probe), mode(dir.resolve("config.json")));
        Path replaced = dir.resolve("adapter");
        AtomicDirectory.replace(
                replaced,
                AtomicDirectory.KEEP_NOTHING,
                d -> AtomicFiles.writeString(d.resolve("adapter_config.json"), "{}"));
        assertEquals(mode(probeDir), mode(replaced));
        assertEquals(mode(probe), mode(replaced.resolve("adapter_config.json")));
    }

    @Test
    void underUmask022And077() throws Exception {
        assumeTrue(FileSystems.getDefault().supportedFileAttributeViews().contains("posix"));
        assumeTrue(Files.isExecutable(Paths.get("/bin/sh")), "no /bin/sh to set a umask");
        check("022", "rw-r--r--", "rwxr-xr-x");
        check("077", "rw-------", "rwx------");
    }

    private void check(String umask, String file, String directory) throws Exception {
        Path root = Files.createDirectory(dir.resolve("umask" + umask));
        String java = Paths.get(System.getProperty("java.home"), "bin", "java").toString();
        Process process =
                new ProcessBuilder(
                                "/bin/sh",
                                "-c",
                                "umask " + umask + " && exec \"$0\" -cp \"$1\" \"$2\" \"$3\"",
                                java,
                                System.getProperty("java.class.path"),
                                PermissionsProbe.class.getName(),
                                root.toString())
                        .redirectErrorStream(true)
                        .start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assumeTrue(process.waitFor(60, TimeUnit.SECONDS), "the probe did not finish");
        assertEquals(0, process.exitValue(), output);
        for (String name : List.of("file", "copy", "dir/inner")) {
            assertEquals(file, mode(root.resolve(name)), "umask " + umask + ": " + name);
        }
        assertEquals(directory, mode(root.resolve("dir")), "umask " + umask + ": dir");
    }
}
