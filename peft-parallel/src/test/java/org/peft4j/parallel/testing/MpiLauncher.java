package org.peft4j.parallel.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Runs a package's tests tagged {@code mpi} on several processes with {@code mpirun}, and checks
 * that every rank ran them all and none failed. Without {@code mpirun} on the {@code PATH} the
 * calling test is skipped with the reason shown ({@code .ci/run} installs Open MPI).
 */
public final class MpiLauncher {

    private static final Pattern SUMMARY =
            Pattern.compile(
                    "MPI-RANK (\\d+): found (\\d+), succeeded (\\d+), failed (\\d+), skipped"
                            + " (\\d+)");
    private static final long TIMEOUT_MINUTES = 10;

    private MpiLauncher() {}

    /**
     * Runs the tests and asserts on every rank's summary.
     *
     * @param ranks the number of processes
     * @param testPackage the package whose {@code mpi} tests run
     * @return the combined output, for the log
     * @throws IOException if the processes cannot be started
     * @throws InterruptedException if interrupted while waiting
     */
    public static String run(int ranks, String testPackage)
            throws IOException, InterruptedException {
        List<String> command = javaCommand(ranks);
        command.add(MpiTestRunner.class.getName());
        command.add(testPackage);
        Path log = Files.createTempFile("peft4j-mpi", ".log");
        try {
            Process process =
                    new ProcessBuilder(command)
                            .redirectErrorStream(true)
                            .redirectOutput(log.toFile())
                            .start();
            if (!process.waitFor(TIMEOUT_MINUTES, TimeUnit.MINUTES)) {
                process.descendants().forEach(ProcessHandle::destroyForcibly);
                process.destroyForcibly();
                fail(
                        "the ranks did not finish within "
                                + TIMEOUT_MINUTES
                                + " minutes (a rank waiting in a collective that another rank"
                                + " skipped?):\n"
                                + Files.readString(log, StandardCharsets.UTF_8));
            }
            String output = Files.readString(log, StandardCharsets.UTF_8);
            System.out.println(output);
            check(ranks, process.exitValue(), output);
            return output;
        } finally {
            Files.deleteIfExists(log);
        }
    }

    /**
     * Returns the command that starts this JVM's class path on several processes under {@code
     * mpirun} (one thread each, the fixture and offline settings passed on), up to the main class
     * the caller appends; skips the calling test when {@code mpirun} is missing.
     *
     * @param ranks the number of processes
     * @return {@code mpirun ... java -cp ... [-D...]}, ready for a main class and its arguments
     */
    public static List<String> javaCommand(int ranks) {
        Path mpirun = findOnPath("mpirun");
        assumeTrue(
                mpirun != null,
                "mpirun not found: install Open MPI (apt-get install openmpi-bin"
                        + " libopenmpi-dev) to run the multi-process tests; skipped");
        List<String> command = new ArrayList<>();
        command.add(mpirun.toString());
        command.addAll(
                List.of(
                        "--allow-run-as-root",
                        "--oversubscribe",
                        "--bind-to",
                        "none",
                        "-np",
                        Integer.toString(ranks),
                        "-x",
                        "OMP_NUM_THREADS=1"));
        command.add(Paths.get(System.getProperty("java.home"), "bin", "java").toString());
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        for (String property :
                new String[] {
                    "peft4j.fixtures", "ai.djl.offline", "org.slf4j.simpleLogger.defaultLogLevel"
                }) {
            String value = System.getProperty(property);
            if (value != null) {
                command.add("-D" + property + '=' + value);
            }
        }
        return command;
    }

    private static void check(int ranks, int status, String output) {
        Matcher matcher = SUMMARY.matcher(output);
        boolean[] seen = new boolean[ranks];
        long found = -1;
        while (matcher.find()) {
            int rank = Integer.parseInt(matcher.group(1));
            long rankFound = Long.parseLong(matcher.group(2));
            assertEquals(0, Long.parseLong(matcher.group(4)), "failures on rank " + rank);
            long skipped = Long.parseLong(matcher.group(5));
            assumeTrue(
                    skipped == 0,
                    skipped + " multi-process tests skipped on rank " + rank + ":\n" + output);
            assertEquals(rankFound, Long.parseLong(matcher.group(3)), "succeeded on rank " + rank);
            if (found >= 0) {
                assertEquals(found, rankFound, "ranks ran different numbers of tests");
            }
            found = rankFound;
            seen[rank] = true;
        }
        for (int rank = 0; rank < ranks; rank++) {
            assertTrue(seen[rank], "no summary from rank " + rank + ":\n" + output);
        }
        assertTrue(found > 0, "no mpi tests found");
        assertEquals(0, status, "mpirun failed:\n" + output);
    }

    private static Path findOnPath(String name) {
        String path = System.getenv("PATH");
        if (path == null) {
            return null;
        }
        for (String dir : path.split(File.pathSeparator)) {
            Path candidate = Paths.get(dir, name);
            if (Files.isExecutable(candidate)) {
                return candidate;
            }
        }
        return null;
    }
}
