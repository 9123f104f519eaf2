package org.peft4j.cli;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The checks of a command's {@code --output} directory before anything is read or written, so that
 * nothing the user did not ask to overwrite is overwritten and a path that cannot serve fails at
 * once with what is wrong with it:
 *
 * <ul>
 *   <li>the output may not be, lie inside, or contain an input (compared by real path, links
 *       followed), {@code --overwrite} or not;
 *   <li>it must be a directory, or a path where one can be created;
 *   <li>a directory that is not empty is refused unless the command was told it may replace it.
 * </ul>
 */
final class OutputDirectory {

    private static final String OPTION = "--output";
    private static final int MAX_LISTED = 5;

    private OutputDirectory() {}

    /**
     * Refuses an output that is, lies inside or contains one of the inputs: writing there would
     * destroy what the command reads.
     *
     * @param output the output directory
     * @param inputs the inputs by option name ({@code --model}, ...); a {@code null} is skipped
     * @throws IllegalArgumentException naming both options and paths
     * @throws IOException if a path cannot be resolved
     */
    static void checkApart(Path output, Map<String, Path> inputs) throws IOException {
        Path out = real(output);
        for (Map.Entry<String, Path> input : inputs.entrySet()) {
            if (input.getValue() == null) {
                continue; // an optional input not given
            }
            Path given = input.getValue();
            String relation = relation(out, real(given), input.getKey(), given);
            if (relation != null) {
                throw new IllegalArgumentException(
                        OPTION
                                + " "
                                + output
                                + " "
                                + relation
                                + "; writing there would destroy the input (refused even with"
                                + " --overwrite): choose another directory");
            }
        }
    }

    /** How the output stands to an input, or {@code null} when they are apart. */
    private static String relation(Path out, Path in, String option, Path given) {
        if (out.equals(in)) {
            return "is " + option + " itself";
        }
        if (out.startsWith(in)) {
            return "is inside " + option + " " + given;
        }
        if (in.startsWith(out)) {
            return "contains " + option + " " + given;
        }
        return null;
    }

    /**
     * Returns whether a path is a directory or lies inside it, by real path.
     *
     * @param path the path
     * @param dir the directory
     * @return whether {@code path} is {@code dir} or below it
     * @throws IOException if a path cannot be resolved
     */
    static boolean isWithin(Path path, Path dir) throws IOException {
        return real(path).startsWith(real(dir));
    }

    /**
     * Refuses an output directory that holds anything.
     *
     * @param output the output directory (it may be missing)
     * @param whatToDo what the user can give instead, after "give"
     * @throws IllegalArgumentException naming the directory and a few of its entries
     * @throws IOException if the directory cannot be listed
     */
    static void checkEmpty(Path output, String whatToDo) throws IOException {
        if (!Files.isDirectory(output)) {
            return;
        }
        List<String> names = new ArrayList<>();
        try (Stream<Path> entries = Files.list(output)) {
            entries.map(p -> p.getFileName().toString()).sorted().forEach(names::add);
        }
        if (!names.isEmpty()) {
            String shown = String.join(", ", names.subList(0, Math.min(MAX_LISTED, names.size())));
            throw new IllegalArgumentException(
                    String.format(
                            Locale.ROOT,
                            "%s %s is not empty (it holds %s%s); give %s, or choose a new or"
                                    + " empty directory",
                            OPTION,
                            output,
                            shown,
                            names.size() > MAX_LISTED ? ", ..." : "",
                            whatToDo));
        }
    }

    /**
     * Creates the output directory, with its parents, or says why it cannot be one.
     *
     * @param output the output directory
     * @throws IllegalArgumentException if it is a file, or it or a parent cannot be created; the
     *     message names the path and says what is wrong
     */
    static void create(Path output) {
        if (Files.exists(output) && !Files.isDirectory(output)) {
            throw new IllegalArgumentException(
                    OPTION
                            + " "
                            + output
                            + " is a file, not a directory; name a directory (it is created when"
                            + " missing)");
        }
        try {
            Files.createDirectories(output);
        } catch (IOException e) {
            throw new IllegalArgumentException(
                    OPTION + " " + output + " cannot be created: " + whyNot(output, e), e);
        }
    }

    /**
     * Checks that the output directory exists or can be created, and leaves the file system as it
     * was: the directories created to find out are removed again, so that a command that fails
     * later (a bad option, a length past the context) leaves no empty output behind. The writer
     * creates the directory when it first writes.
     *
     * @param output the output directory
     * @throws IllegalArgumentException as {@link #create} does
     * @throws IOException if a directory created to check cannot be removed again
     */
    static void checkCreatable(Path output) throws IOException {
        Path absolute = output.toAbsolutePath().normalize();
        Path existing = absolute;
        while (existing != null && !Files.exists(existing, LinkOption.NOFOLLOW_LINKS)) {
            existing = existing.getParent();
        }
        create(output);
        // the deepest first; they hold nothing. deleteIfExists: the other ranks of a run under
        // mpirun check the same path at the same time
        for (Path dir = absolute; dir != null && !dir.equals(existing); dir = dir.getParent()) {
            Files.deleteIfExists(dir);
        }
    }

    /** Says which directory could not be created, and why. */
    private static String whyNot(Path output, IOException e) {
        Path ancestor = output.toAbsolutePath().normalize();
        while (ancestor != null && !Files.exists(ancestor, LinkOption.NOFOLLOW_LINKS)) {
            ancestor = ancestor.getParent();
        }
        if (ancestor != null && !Files.isDirectory(ancestor)) {
            return ancestor + " is a file, not a directory";
        }
        String failed =
                e instanceof FileSystemException && ((FileSystemException) e).getFile() != null
                        ? ((FileSystemException) e).getFile()
                        : output.toString();
        return "creating the directory "
                + failed
                + (ancestor == null ? "" : " in " + ancestor)
                + " failed ("
                + reason(e)
                + "); choose a directory you can write to";
    }

    private static String reason(IOException e) {
        if (e instanceof NoSuchFileException) {
            return "no such file or directory: the file system there makes no new directories";
        }
        if (e instanceof AccessDeniedException) {
            return "permission denied";
        }
        if (e instanceof FileSystemException && ((FileSystemException) e).getReason() != null) {
            return ((FileSystemException) e).getReason();
        }
        return String.valueOf(e.getMessage());
    }

    /**
     * The real path of a file that may not exist yet: the real path of its nearest existing
     * ancestor, links followed, with the rest appended.
     */
    private static Path real(Path path) throws IOException {
        Path absolute = path.toAbsolutePath().normalize();
        Path existing = absolute;
        while (existing != null && !Files.exists(existing)) {
            existing = existing.getParent();
        }
        if (existing == null) {
            return absolute;
        }
        return existing.toRealPath().resolve(existing.relativize(absolute)).normalize();
    }
}
