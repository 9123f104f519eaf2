package org.peft4j.cli.docs;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/** The fenced code blocks of the project's Markdown files, for the tests that keep docs true. */
final class MarkdownBlocks {

    private static final Pattern OPENING = Pattern.compile("^```(\\w*)\\s*$");
    private static final Pattern MARKER = Pattern.compile("^<!-- snippet: (\\S+) -->$");

    /**
     * One fenced block.
     *
     * @param file the Markdown file
     * @param line the line of its opening fence, from 1
     * @param language the fence's language, or empty
     * @param snippet the name in a {@code <!-- snippet: NAME -->} line just above it, or null
     * @param text the lines between the fences, joined with newlines
     */
    record Block(Path file, int line, String language, String snippet, String text) {

        /** Returns {@code file:line}, for messages. */
        String where(Path root) {
            return root.relativize(file) + ":" + line;
        }
    }

    private MarkdownBlocks() {}

    /**
     * Returns the project's root: the nearest directory above the module the tests run in that
     * holds {@code README.md} and {@code docs/}.
     *
     * @return the directory holding {@code README.md} and {@code docs/}
     */
    static Path projectRoot() {
        Path module = Path.of("").toAbsolutePath();
        for (Path dir = module.getParent(); dir != null; dir = dir.getParent()) {
            if (Files.isRegularFile(dir.resolve("README.md")) && Files.isDirectory(dir.resolve("docs"))) {
                return dir;
            }
        }
        throw new IllegalStateException(
                "no README.md and docs/ above " + module + "; run the tests inside the project");
    }

    /**
     * Returns every fenced block of {@code README.md} and of the Markdown files under {@code
     * docs/}.
     *
     * @param root the project's root
     * @return the blocks in file order
     */
    static List<Block> all(Path root) {
        List<Path> files = new ArrayList<>();
        files.add(root.resolve("README.md"));
        try (Stream<Path> docs = Files.walk(root.resolve("docs"))) {
            docs.filter(p -> p.toString().endsWith(".md")).sorted().forEach(files::add);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        List<Block> blocks = new ArrayList<>();
        for (Path file : files) {
            blocks.addAll(of(file));
        }
        return blocks;
    }

    private static List<Block> of(Path file) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        List<Block> blocks = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            Matcher opening = OPENING.matcher(lines.get(i));
            if (!opening.matches()) {
                continue;
            }
            int start = i;
            StringBuilder text = new StringBuilder();
            for (i++; i < lines.size() && !lines.get(i).startsWith("```"); i++) {
                text.append(lines.get(i)).append('\n');
            }
            if (i == lines.size()) {
                throw new IllegalStateException(file + ":" + (start + 1) + ": unclosed code block");
            }
            String snippet = null;
            if (start > 0) {
                Matcher marker = MARKER.matcher(lines.get(start - 1).trim());
                if (marker.matches()) {
                    snippet = marker.group(1);
                }
            }
            blocks.add(new Block(file, start + 1, opening.group(1), snippet, text.toString()));
        }
        return blocks;
    }
}
