package org.peft4j.core.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.testing.Crashes;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The lock of a replacement excludes other processes for as long as the save or recovery runs: the
 * ranks of a tensor-parallel group recover one directory at the same moment, and two recoveries at
 * once would both finish the same swap.
 */
class DirectoryLockTest {

    @TempDir Path root;

    @Test
    void anotherProcessFindsTheLockHeldWhileASaveWrites() throws Exception {
        Path target = root.resolve("adapter");
        Path lockFile = root.resolve(".adapter.lock");
        String[] seen = new String[1];
        AtomicDirectory.replace(
                target,
                AtomicDirectory.KEEP_NOTHING,
                dir -> {
                    AtomicFiles.writeString(dir.resolve("adapter_config.json"), "{}");
                    seen[0] = probe(lockFile);
                });
        assertEquals("held", seen[0], "another process could lock " + lockFile);
        assertEquals(List.of(), Crashes.leftovers(target));
        assertTrue(Files.isRegularFile(target.resolve("adapter_config.json")));
    }

    /** Starts {@link LockProbe} on the lock file and returns what it printed. */
    private static String probe(Path lockFile) throws IOException {
        String java = Paths.get(System.getProperty("java.home"), "bin", "java").toString();
        Process process =
                new ProcessBuilder(
                                java,
                                "-cp",
                                System.getProperty("java.class.path"),
                                LockProbe.class.getName(),
                                lockFile.toString())
                        .redirectErrorStream(true)
                        .start();
        try {
            String output =
                    new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(process.waitFor(60, TimeUnit.SECONDS), "the probe did not finish");
            assertEquals(0, process.exitValue(), output);
            return output;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
    }
}
