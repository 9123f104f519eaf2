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
 *   <li>A single string is a regular expression that must match the whole path, as the seed's
 *       {@code re.fullmatch} does: {@code ".*q_proj.*"}.
 *   <li>A list holds entries that each match a path equal to it, a path ending in {@code "." +
 *       entry} (Hugging Face: {@code "q_proj"} selects every {@code ...self_attn.q_proj}), or, read
 *       as a regular expression, the whole path (the seed's lists of regexes).
 * </ul>
 *
 * <p>Instances are immutable.
 */
public final class TargetModules {

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
     * @param entries names matched exactly or as a dotted suffix, or regexes matching whole paths
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
            if (patterns.get(i).matcher(path).matches()) {
                return true;
            }
            if (!singleRegex) {
                String entry = entries.get(i);
                if (path.equals(entry) || path.endsWith('.' + entry)) {
                    return true;
                }
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
