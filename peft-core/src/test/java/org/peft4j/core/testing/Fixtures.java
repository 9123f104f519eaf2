package org.peft4j.core.testing;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

/**
 * Finds the shared model fixtures ({@code ../shared/fixtures}, or the system property {@code
 * peft4j.fixtures} that the build sets). Tests that need them are skipped, with the reason shown,
 * where they are absent.
 */
public final class Fixtures {

    private Fixtures() {}

    /**
     * Returns the fixtures directory, or skips the calling test.
     *
     * @return the directory holding {@code stories260K/}
     */
    public static Path root() {
        String configured = System.getProperty("peft4j.fixtures");
        Path dir = configured != null ? Paths.get(configured) : Paths.get("../shared/fixtures");
        dir = dir.toAbsolutePath().normalize();
        assumeTrue(
                Files.isDirectory(dir.resolve("stories260K")),
                "model fixtures not found at " + dir + " (set -Dpeft4j.fixtures=DIR); skipped");
        return dir;
    }

    /**
     * Returns the stories260K model directory, or skips the calling test.
     *
     * @return {@code <fixtures>/stories260K}
     */
    public static Path stories260K() {
        return root().resolve("stories260K");
    }
}
