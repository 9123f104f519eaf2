package org.peft4j.core.tree;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Which block paths a method adapts, in the two forms of the seed and of Hugging Face PEFT.
 *
 * <ul>
 *   <li>A single string is a regular expression that must match the whole path, as both Hugging
 *       Face PEFT and the seed read it ({@code re.fullmatch}): {@code ".*\\.(q_proj|v_proj)"}.
 *   <li>A list holds entries of two kinds, each read as the tool that writes it reads it. A
 *       <em>name</em> (an entry without any of the regex characters {@code \ ^ $ * + ? ( ) [ ] { }
 *       |}) matches a path equal to it or ending in {@code "." + name}, as Hugging Face PEFT reads
 *       its lists: {@code "q_proj"} selects every {@code ...self_attn.q_proj}. Any other entry is a
 *       regular expression that must match the whole path, as the seed (PaddleNLP) reads its lists:
 *       {@code ".*q_proj.*"}.
 * </ul>
 *
 * <p>So a list written by Hugging Face PEFT (names) selects here what it selects there, and so
 * does a list of regexes written by PaddleNLP or by earlier peft4j versions. {@link
 * HuggingFaceTargets} turns either form into what each tool's file must hold.
 *
 * <p>Instances are immutable.
 */
public final class TargetModules {

    private static final String REGEX_CHARACTERS = "\\^$*+?()[]{}|";

    private final boolean singleRegex;
    private final List<String> entries;
    private final List<Pattern> patterns;

    private TargetModules(boolean singleRegex, List<String> entries) {
        this.singleRegex = singleRegex;
        this.entries = Collections.unmodifiableList(new ArrayList<>(entries));
        List<Pattern> compiled = new ArrayList<>(entries.size());
        for (String entry : entries) {
            if (entry == null || entry.isEmpty()) {
                throw new IllegalArgumentException("a module pattern is empty");
            }
            try {
                compiled.add(Pattern.compile(entry));
            } catch (PatternSyntaxException e) {
                throw new IllegalArgumentException(
                        "module pattern \""
                                + entry
                                + "\" is not a valid regular expression: "
                                + e.getDescription(),
                        e);
            }
        }
        this.patterns = Collections.unmodifiableList(compiled);
    }

    /**
     * Creates the single-regex form.
     *
     * @param regex a regular expression that must match a whole path
     * @return the matcher
     * @throws IllegalArgumentException if the expression is empty or invalid
     */
    public static TargetModules regex(String regex) {
        return new TargetModules(true, List.of(regex));
    }

    /**
     * Creates the list form.
     *
     * @param entries names matched exactly or as a dotted suffix, and regexes matching whole paths
     * @return the matcher
     * @throws IllegalArgumentException if the list is empty or an entry is empty or invalid
     */
    public static TargetModules list(List<String> entries) {
        if (entries.isEmpty()) {
            throw new IllegalArgumentException("the list of module patterns is empty");
        }
        return new TargetModules(false, entries);
    }

    /**
     * Tests whether a list entry is a name (matched exactly or as a dotted suffix) rather than a
     * regular expression.
     *
     * @param entry a list entry
     * @return true when the entry holds none of the characters {@code \ ^ $ * + ? ( ) [ ] { } |}
     */
    public static boolean isName(String entry) {
        for (int i = 0; i < entry.length(); i++) {
            if (REGEX_CHARACTERS.indexOf(entry.charAt(i)) >= 0) {
                return false;
            }
        }
        return true;
    }

    /**
     * Tests whether every entry of the list form is a name.
     *
     * @return false for the single-regex form or a list with a regex entry
     */
    public boolean isNames() {
        return !singleRegex && entries.stream().allMatch(TargetModules::isName);
    }

    /**
     * Returns whether this is the single-regex form.
     *
     * @return true for a single full-match regex, false for a list
     */
    public boolean isSingleRegex() {
        return singleRegex;
    }

    /**
     * Returns the entries as given.
     *
     * @return an unmodifiable list; one element in the single-regex form
     */
    public List<String> getEntries() {
        return entries;
    }

    /**
     * Tests a logical block path.
     *
     * @param path a dotted path such as {@code model.layers.0.self_attn.q_proj}
     * @return whether this selects the path
     */
    public boolean matches(String path) {
        for (int i = 0; i < entries.size(); i++) {
            String entry = entries.get(i);
            if (singleRegex || !isName(entry)) {
                if (patterns.get(i).matcher(path).matches()) {
                    return true;
                }
            } else if (path.equals(entry) || path.endsWith('.' + entry)) {
                return true;
            }
        }
        return false;
    }

    /** {@inheritDoc} */
    @Override
    public boolean equals(Object o) {
        if (!(o instanceof TargetModules)) {
            return false;
        }
        TargetModules other = (TargetModules) o;
        return singleRegex == other.singleRegex && entries.equals(other.entries);
    }

    /** {@inheritDoc} */
    @Override
    public int hashCode() {
        return entries.hashCode() * 2 + (singleRegex ? 1 : 0);
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return singleRegex ? '"' + entries.get(0) + '"' : entries.toString();
    }
}
