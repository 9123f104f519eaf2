package org.peft4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/** Runs the command line in-process with standard output and error captured, for tests. */
public final class CliRunner {

    private CliRunner() {}

    /**
     * Runs {@code peft4j} with arguments.
     *
     * @param args the arguments
     * @return {exit status, standard output, standard error}
     */
    public static String[] run(String... args) {
        PrintStream out = System.out;
        PrintStream err = System.err;
        ByteArrayOutputStream stdout = new ByteArrayOutputStream();
        ByteArrayOutputStream stderr = new ByteArrayOutputStream();
        int status;
        try {
            System.setOut(new PrintStream(stdout, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(stderr, true, StandardCharsets.UTF_8));
            status = Peft4j.run(args);
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
        return new String[] {
            Integer.toString(status),
            stdout.toString(StandardCharsets.UTF_8),
            stderr.toString(StandardCharsets.UTF_8)
        };
    }

    /**
     * Returns the error line of a run that must have failed with status 1: the line {@code peft4j
     * <command>: ...} of standard error (the log may print lines before it).
     *
     * @param result what {@link #run} returned
     * @return the line, or all of standard error when there is none
     */
    public static String error(String[] result) {
        assertEquals("1", result[0], result[2]);
        return result[2].lines().filter(l -> l.startsWith("peft4j ")).findFirst().orElse(result[2]);
    }
}
