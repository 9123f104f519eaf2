package org.peft4j.cli.docs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.cli.Peft4j;
import org.peft4j.train.data.JsonlExamples;

import picocli.CommandLine;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Keeps the code in {@code README.md} and {@code docs/} true: every Java block is a region of
 * {@link DocSnippetsTest}, which compiles and runs it; every {@code peft4j} command in a shell
 * block parses with the real command line; every JSON block parses (data lines as training
 * examples); every Maven coordinate in an XML block is the build's own.
 */
class DocsCodeTest {

    private static final Set<String> LANGUAGES =
            Set.of("java", "sh", "bash", "json", "xml", "text");
    private static final Path SNIPPETS =
            Path.of("src/test/java/org/peft4j/cli/docs/DocSnippetsTest.java");
    private static final Pattern REGION =
            Pattern.compile(
                    "// snippet:start (\\S+)\\n(.*?)\\n[ \\t]*// snippet:end \\1\\n",
                    Pattern.DOTALL);

    private final Path root = MarkdownBlocks.projectRoot();
    private final List<MarkdownBlocks.Block> blocks = MarkdownBlocks.all(root);

    @Test
    void everyBlockNamesItsLanguage() {
        List<String> bad = new ArrayList<>();
        for (MarkdownBlocks.Block block : blocks) {
            if (!LANGUAGES.contains(block.language())) {
                bad.add(block.where(root) + ": \"" + block.language() + '"');
            }
        }
        assertTrue(
                bad.isEmpty(),
                "code blocks without a checked language (one of "
                        + LANGUAGES
                        + "; use text for synopses and output): "
                        + bad);
    }

    @Test
    void everyJavaBlockIsARegionThatTheSnippetTestsRun() throws IOException {
        Map<String, String> regions = regions();
        Set<String> shown = new java.util.HashSet<>();
        List<String> bad = new ArrayList<>();
        int checked = 0;
        for (MarkdownBlocks.Block block : blocks) {
            if (!block.language().equals("java")) {
                continue;
            }
            checked++;
            if (block.snippet() == null) {
                bad.add(
                        block.where(root)
                                + ": no <!-- snippet: NAME --> line above the block; add the code"
                                + " as a region of "
                                + SNIPPETS);
            } else if (!regions.containsKey(block.snippet())) {
                bad.add(
                        block.where(root)
                                + ": no region \""
                                + block.snippet()
                                + "\" in "
                                + SNIPPETS);
            } else if (!regions.get(block.snippet()).equals(block.text())) {
                bad.add(
                        block.where(root)
                                + ": differs from region \""
                                + block.snippet()
                                + "\"; copy the region into the block:\n"
                                + regions.get(block.snippet()));
            } else {
                shown.add(block.snippet());
            }
        }
        assertTrue(checked >= 7, "found only " + checked + " Java blocks");
        assertTrue(bad.isEmpty(), String.join("\n", bad));
        Set<String> unused = new java.util.TreeSet<>(regions.keySet());
        unused.removeAll(shown);
        assertTrue(unused.isEmpty(), "regions no document shows: " + unused);
    }

    @Test
    void everyPeft4jCommandInShellBlocksParses() {
        List<String> bad = new ArrayList<>();
        int checked = 0;
        for (MarkdownBlocks.Block block : blocks) {
            if (!block.language().equals("sh") && !block.language().equals("bash")) {
                continue;
            }
            for (String command : commands(block.text())) {
                List<String> words = words(command);
                int at = peft4jAt(words);
                if (at < 0) {
                    continue;
                }
                checked++;
                String[] args = words.subList(at + 1, words.size()).toArray(String[]::new);
                try {
                    new CommandLine(new Peft4j()).parseArgs(args);
                } catch (CommandLine.ParameterException e) {
                    bad.add(block.where(root) + ": `" + command + "`: " + e.getMessage());
                }
            }
        }
        assertTrue(checked >= 15, "found only " + checked + " peft4j commands");
        assertTrue(bad.isEmpty(), String.join("\n", bad));
    }

    @Test
    void everyJsonBlockParsesAndDataLinesAreExamples(@TempDir Path dir) throws IOException {
        ObjectMapper json = new ObjectMapper();
        int checked = 0;
        for (MarkdownBlocks.Block block : blocks) {
            if (!block.language().equals("json")) {
                continue;
            }
            checked++;
            List<String> lines = block.text().lines().filter(l -> !l.isBlank()).toList();
            boolean jsonLines = lines.stream().allMatch(l -> l.startsWith("{") && l.endsWith("}"));
            if (!jsonLines) {
                json.readTree(block.text()); // one document
                continue;
            }
            Path file = dir.resolve("block" + block.line() + ".jsonl");
            Files.write(file, lines, StandardCharsets.UTF_8);
            assertEquals(
                    lines.size(),
                    JsonlExamples.read(file, false).size(),
                    block.where(root) + ": every line an example");
        }
        assertTrue(checked >= 1);
    }

    @Test
    void everyMavenCoordinateInXmlBlocksIsTheBuilds() throws IOException {
        String pom = Files.readString(root.resolve("pom.xml"), StandardCharsets.UTF_8);
        Map<String, String> versions = managedVersions(pom);
        int checked = 0;
        for (MarkdownBlocks.Block block : blocks) {
            if (!block.language().equals("xml")) {
                continue;
            }
            Matcher dependency = DEPENDENCY.matcher(block.text());
            while (dependency.find()) {
                String group = tag(dependency.group(1), "groupId");
                String artifact = tag(dependency.group(1), "artifactId");
                String version = tag(dependency.group(1), "version");
                if (version == null) {
                    // left to DJL's BOM, which the same block must import at the build's version
                    assertTrue(
                            group.startsWith("ai.djl") && block.text().contains("<artifactId>bom<"),
                            block.where(root)
                                    + ": "
                                    + artifact
                                    + " has no version and the block imports no DJL BOM");
                } else {
                    assertEquals(
                            versions.get(group + ':' + artifact),
                            version,
                            block.where(root) + ": " + artifact + " is not the build's version");
                }
                checked++;
            }
        }
        assertTrue(checked >= 4, "found only " + checked + " dependencies");
    }

    @Test
    void everyRelativeLinkLeadsToAFileAndHeadingThatExist() throws IOException {
        List<Path> pages = new ArrayList<>();
        pages.add(root.resolve("README.md"));
        try (var docs = Files.walk(root.resolve("docs"))) {
            docs.filter(p -> p.toString().endsWith(".md")).forEach(pages::add);
        }
        Pattern link = Pattern.compile("\\]\\(([^)\\s]+)\\)");
        List<String> bad = new ArrayList<>();
        int checked = 0;
        for (Path page : pages) {
            String text = Files.readString(page, StandardCharsets.UTF_8);
            Matcher matcher = link.matcher(text);
            while (matcher.find()) {
                String target = matcher.group(1);
                if (target.matches("^[a-z]+:.*")) {
                    continue; // https:, mailto:
                }
                checked++;
                int hash = target.indexOf('#');
                String file = hash < 0 ? target : target.substring(0, hash);
                Path resolved = file.isEmpty() ? page : page.getParent().resolve(file).normalize();
                if (!Files.exists(resolved)) {
                    bad.add(root.relativize(page) + ": " + target + " (no such file)");
                } else if (hash >= 0
                        && !headingSlugs(resolved).contains(target.substring(hash + 1))) {
                    bad.add(root.relativize(page) + ": " + target + " (no such heading)");
                }
            }
        }
        assertTrue(checked >= 20, "found only " + checked + " relative links");
        assertTrue(bad.isEmpty(), String.join("\n", bad));
    }

    /** GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as dashes. */
    private static Set<String> headingSlugs(Path page) throws IOException {
        Set<String> slugs = new java.util.HashSet<>();
        for (String line : Files.readAllLines(page, StandardCharsets.UTF_8)) {
            if (line.startsWith("#")) {
                String title = line.replaceFirst("^#+\\s*", "").toLowerCase(java.util.Locale.ROOT);
                slugs.add(title.replaceAll("[^\\p{L}\\p{N} _-]", "").replace(' ', '-'));
            }
        }
        return slugs;
    }

    private static final Pattern DEPENDENCY =
            Pattern.compile("<dependency>(.*?)</dependency>", Pattern.DOTALL);

    private static String tag(String xml, String name) {
        Matcher matcher = Pattern.compile("<" + name + ">([^<]*)</" + name + ">").matcher(xml);
        return matcher.find() ? matcher.group(1).trim() : null;
    }

    /** groupId:artifactId to version in the root pom's dependency management and modules. */
    private static Map<String, String> managedVersions(String pom) {
        Map<String, String> properties = new HashMap<>();
        properties.put("project.version", tag(pom, "version"));
        Matcher block =
                Pattern.compile("<properties>(.*?)</properties>", Pattern.DOTALL).matcher(pom);
        assertTrue(block.find());
        Matcher property = Pattern.compile("<([\\w.]+)>([^<]*)</\\1>").matcher(block.group(1));
        while (property.find()) {
            properties.put(property.group(1), property.group(2));
        }
        Map<String, String> versions = new LinkedHashMap<>();
        Matcher dependency = DEPENDENCY.matcher(pom);
        while (dependency.find()) {
            String version = tag(dependency.group(1), "version");
            if (version == null) {
                continue;
            }
            for (int i = 0; i < 3 && version.contains("${"); i++) {
                for (Map.Entry<String, String> e : properties.entrySet()) {
                    version = version.replace("${" + e.getKey() + "}", e.getValue());
                }
            }
            versions.put(
                    tag(dependency.group(1), "groupId")
                            + ':'
                            + tag(dependency.group(1), "artifactId"),
                    version);
        }
        return versions;
    }

    /** The regions of the snippet tests, dedented, each ending in a newline as a block's text. */
    private static Map<String, String> regions() throws IOException {
        String source = Files.readString(SNIPPETS, StandardCharsets.UTF_8);
        Map<String, String> regions = new LinkedHashMap<>();
        Matcher region = REGION.matcher(source);
        while (region.find()) {
            assertFalse(regions.containsKey(region.group(1)), "two regions " + region.group(1));
            regions.put(region.group(1), dedent(region.group(2)));
        }
        assertFalse(regions.isEmpty(), "no regions in " + SNIPPETS);
        return regions;
    }

    private static String dedent(String text) {
        List<String> lines = text.lines().toList();
        int indent =
                lines.stream()
                        .filter(l -> !l.isBlank())
                        .mapToInt(l -> l.length() - l.stripLeading().length())
                        .min()
                        .orElse(0);
        StringBuilder out = new StringBuilder();
        for (String line : lines) {
            out.append(line.isBlank() ? "" : line.substring(indent)).append('\n');
        }
        return out.toString();
    }

    /** The commands of a shell block: continuations joined, comments dropped, split at ; and &&. */
    private static List<String> commands(String text) {
        List<String> commands = new ArrayList<>();
        String joined = text.replace("\\\n", " ");
        for (String line : joined.split("\n")) {
            String code = line.replaceAll("(^|\\s)#.*$", "").trim();
            for (String command : code.split(";|&&")) {
                if (!command.isBlank()) {
                    commands.add(command.trim());
                }
            }
        }
        return commands;
    }

    /** Splits a command into words, honouring quotes; variables stand for a placeholder. */
    private static List<String> words(String command) {
        List<String> words = new ArrayList<>();
        Matcher word = Pattern.compile("\"([^\"]*)\"|'([^']*)'|(\\S+)").matcher(command);
        while (word.find()) {
            String value =
                    word.group(1) != null
                            ? word.group(1)
                            : word.group(2) != null ? word.group(2) : word.group(3);
            words.add(value.startsWith("$") && !value.equals("$P") ? "VALUE" : value);
        }
        return words;
    }

    /**
     * The index of the word that starts peft4j ({@code $P}, {@code ...peft4j.jar}, {@code peft4j}).
     */
    private static int peft4jAt(List<String> words) {
        for (int i = 0; i < words.size(); i++) {
            String word = words.get(i);
            if (word.equals("$P") || word.endsWith("peft4j.jar") || word.equals("peft4j")) {
                return i;
            }
        }
        return -1;
    }
}
