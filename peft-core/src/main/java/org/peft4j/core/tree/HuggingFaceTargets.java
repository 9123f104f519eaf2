package org.peft4j.core.tree;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Writes a {@link TargetModules} so that the tool reading each config file selects the layers
 * peft4j adapted.
 *
 * <p>The two tools read {@code target_modules} differently (Hugging Face PEFT 0.20's {@code
 * check_target_module_exists} in {@code tuners/tuners_utils.py}; PaddleNLP's {@code
 * LoRAModel.get_lora_model}):
 *
 * <ul>
 *   <li>Hugging Face PEFT ({@code adapter_config.json}): a string is one regex that must match a
 *       whole module name ({@code re.fullmatch}); a list entry matches a name equal to it or ending
 *       in {@code "." + entry}, and is never read as a regex. A list of regexes such as {@code
 *       ".*q_proj.*"} therefore selects nothing there.
 *   <li>PaddleNLP ({@code lora_config.json}): a string, or each entry of a list, is one regex that
 *       must match a whole name; a plain name such as {@code "q_proj"} selects only a top-level
 *       layer of that name.
 * </ul>
 *
 * <p>With the model at hand ({@link #forAdapterConfig(TargetModules, Collection, Collection)}),
 * the written form is chosen from the adapted paths and checked against every module path: names
 * when each adapted path has a dotted suffix that selects no other module (most readable, and what
 * vLLM's LoRA loader checks entries against: the last component of each name), else the config's
 * own regex when it selects exactly the adapted paths, else the adapted paths themselves as one
 * alternation. Without the model, the config's own entries are translated.
 *
 * <p>A regex written for Python must mean there what it means in Java. Only the common subset is
 * written: literal characters, {@code .}, character classes {@code [...]} of characters and ranges
 * (optionally negated), groups {@code (...)} and {@code (?:...)}, {@code |}, the quantifiers {@code
 * * + ? {n} {n,} {n,m}} (greedy or lazy), the anchors {@code ^ $}, and a backslash before an ASCII
 * punctuation character. Everything else is refused, among it: {@code \d \w \s \b} (Unicode in
 * Python, ASCII in Java), {@code \p{..}}, {@code \Q..\E}, possessive quantifiers, named groups,
 * look-arounds, inline flags, {@code [} or {@code &&} inside a class (Java nests and intersects
 * classes, Python reads the characters). Java's {@code .} also refuses the line terminators {@code
 * \r}, U+0085, U+2028 and U+2029, which Python's accepts; module paths hold none.
 */
public final class HuggingFaceTargets {

    private HuggingFaceTargets() {}

    /**
     * Returns what {@code adapter_config.json} holds for a config alone: a single regex stays one;
     * a list of names stays a list; a list with regex entries becomes one alternation, {@code
     * (?:entry)} for each regex and {@code (?:.*\.)?name} for each name, which Hugging Face's
     * full match reads as peft4j reads the list.
     *
     * @param targets the config's targets
     * @return a single regex or a list of names
     * @throws IllegalArgumentException if a regex is outside the subset Python reads the same
     */
    public static TargetModules forAdapterConfig(TargetModules targets) {
        if (targets.isNames()) {
            return targets;
        }
        String regex = asOneRegex(targets);
        checkPythonRegex(regex);
        return TargetModules.regex(regex);
    }

    /**
     * Returns what {@code adapter_config.json} holds so that Hugging Face PEFT's rules select
     * exactly {@code selected} among {@code modulePaths}.
     *
     * @param targets the config's targets, tried when names cannot express the selection
     * @param selected the adapted paths, in tree order
     * @param modulePaths every module path of the base model (the empty root included or not)
     * @return a list of names, or a single regex
     * @throws IllegalArgumentException if {@code selected} is empty
     */
    public static TargetModules forAdapterConfig(
            TargetModules targets, Collection<String> selected, Collection<String> modulePaths) {
        Set<String> chosen = new LinkedHashSet<>(selected);
        if (chosen.isEmpty()) {
            throw new IllegalArgumentException("no adapted layer to write target_modules for");
        }
        // the layers' own names (q_proj, v_proj) when they select nothing else
        List<String> lastNames = new ArrayList<>();
        for (String path : chosen) {
            String last = path.substring(path.lastIndexOf('.') + 1);
            if (!lastNames.contains(last)) {
                lastNames.add(last);
            }
        }
        if (lastNames.stream().allMatch(n -> !n.isEmpty() && TargetModules.isName(n))) {
            Set<String> byLastNames = new LinkedHashSet<>();
            lastNames.forEach(n -> byLastNames.addAll(nameMatches(n, modulePaths)));
            if (chosen.equals(byLastNames)) {
                return TargetModules.list(lastNames);
            }
        }
        // else, path by path, the shortest suffix that selects no other module
        List<String> names = new ArrayList<>();
        boolean expressible = true;
        for (String path : chosen) {
            if (names.stream().anyMatch(n -> path.equals(n) || path.endsWith('.' + n))) {
                continue; // a shorter name already selects it
            }
            String name = uniqueSuffix(path, chosen, modulePaths);
            if (name == null) {
                expressible = false;
                break;
            }
            names.add(name);
        }
        if (expressible) {
            return TargetModules.list(names);
        }
        String own = pythonRegexOrNull(asOneRegex(targets));
        if (own != null && chosen.equals(fullMatches(List.of(own), modulePaths))) {
            return TargetModules.regex(own);
        }
        List<String> literal = new ArrayList<>();
        chosen.forEach(path -> literal.add(escape(path)));
        return TargetModules.regex(String.join("|", literal));
    }

    /**
     * Returns what {@code lora_config.json} holds for a config alone: a single regex stays one; in
     * a list, regex entries stay and each name becomes {@code (?:.*\.)?name}, which PaddleNLP's
     * full match reads as peft4j and Hugging Face read the name.
     *
     * @param targets the config's targets
     * @return a single regex, or a list of regexes
     * @throws IllegalArgumentException if a regex is outside the subset Python reads the same
     */
    public static TargetModules forPaddleNlpConfig(TargetModules targets) {
        if (targets.isSingleRegex()) {
            checkPythonRegex(targets.getEntries().get(0));
            return targets;
        }
        List<String> regexes = new ArrayList<>();
        for (String entry : targets.getEntries()) {
            if (TargetModules.isName(entry)) {
                regexes.add("(?:.*\\.)?" + escape(entry));
            } else {
                checkPythonRegex(entry);
                regexes.add(entry);
            }
        }
        return TargetModules.list(regexes);
    }

    /**
     * Returns what {@code lora_config.json} holds so that PaddleNLP's rule (each entry a full
     * match) selects exactly {@code selected}: the config's own regexes when they do, else the
     * regexes of {@code adapterForm}'s names ({@code .*\.name}, or {@code (?:.*\.)?name} when a
     * top-level module bears the name).
     *
     * @param targets the config's targets
     * @param adapterForm what {@link #forAdapterConfig(TargetModules, Collection, Collection)}
     *     returned for the same selection
     * @param selected the adapted paths
     * @param modulePaths every module path of the base model
     * @return a single regex, or a list of regexes
     */
    public static TargetModules forPaddleNlpConfig(
            TargetModules targets,
            TargetModules adapterForm,
            Collection<String> selected,
            Collection<String> modulePaths) {
        Set<String> chosen = new LinkedHashSet<>(selected);
        boolean allRegex =
                targets.isSingleRegex()
                        || targets.getEntries().stream().noneMatch(TargetModules::isName);
        if (allRegex
                && targets.getEntries().stream()
                        .allMatch(e -> pythonRegexOrNull(e) != null)
                && chosen.equals(fullMatches(targets.getEntries(), modulePaths))) {
            return targets;
        }
        if (adapterForm.isSingleRegex()) {
            return adapterForm;
        }
        List<String> regexes = new ArrayList<>();
        for (String name : adapterForm.getEntries()) {
            String suffixOnly = ".*\\." + escape(name);
            Set<String> byName = nameMatches(name, modulePaths);
            regexes.add(
                    byName.equals(fullMatches(List.of(suffixOnly), modulePaths))
                            ? suffixOnly
                            : "(?:.*\\.)?" + escape(name));
        }
        return TargetModules.list(regexes);
    }

    /**
     * Checks that a regex is in the subset that Java and Python's {@code re} read alike.
     *
     * @param regex a regular expression Java accepts
     * @throws IllegalArgumentException naming the construct, why it is refused and what to write
     */
    public static void checkPythonRegex(String regex) {
        int n = regex.length();
        int i = 0;
        boolean inClass = false;
        while (i < n) {
            char c = regex.charAt(i);
            if (c == '\\') {
                if (i + 1 >= n) {
                    throw notPython(regex, "\\", "a trailing backslash");
                }
                char next = regex.charAt(i + 1);
                if (next >= 128 || Character.isLetterOrDigit(next)) {
                    throw notPython(
                            regex,
                            "\\" + next,
                            "escapes of letters and digits mean different things in Java and"
                                    + " Python (\\d, \\w, \\s and \\b are Unicode-aware in"
                                    + " Python); write a class such as [0-9] or [A-Za-z0-9_]");
                }
                i += 2;
                continue;
            }
            if (inClass) {
                if (c == '[') {
                    throw notPython(
                            regex, "[", "Java reads [ inside [...] as a nested class; escape it");
                }
                if (c == '&' && i + 1 < n && regex.charAt(i + 1) == '&') {
                    throw notPython(
                            regex, "&&", "Java reads && inside [...] as an intersection");
                }
                if (c == ']') {
                    inClass = false;
                }
                i++;
                continue;
            }
            if (c == '[') {
                inClass = true;
                i++;
                if (i < n && regex.charAt(i) == '^') {
                    i++;
                }
                if (i < n && regex.charAt(i) == ']') {
                    throw notPython(regex, "[]", "a ] first in a class; escape it as \\]");
                }
                continue;
            }
            if (c == '(' && i + 1 < n && regex.charAt(i + 1) == '?') {
                if (i + 2 < n && regex.charAt(i + 2) == ':') {
                    i += 3;
                    continue;
                }
                throw notPython(
                        regex,
                        regex.substring(i, Math.min(n, i + 3)),
                        "only the groups (...) and (?:...) are read alike (named groups,"
                                + " look-arounds and inline flags differ)");
            }
            if ((c == '*' || c == '+' || c == '?' || c == '}')
                    && i + 1 < n
                    && regex.charAt(i + 1) == '+') {
                throw notPython(
                        regex,
                        c + "+",
                        "possessive quantifiers exist in Python's re only from 3.11 on");
            }
            i++;
        }
    }

    /**
     * Escapes a literal for a regex that Java and Python read alike: a backslash before every ASCII
     * character that is neither a letter, a digit nor {@code _}.
     *
     * @param literal the text to match literally
     * @return the regex
     */
    public static String escape(String literal) {
        StringBuilder out = new StringBuilder(literal.length() + 8);
        for (int i = 0; i < literal.length(); i++) {
            char c = literal.charAt(i);
            if (c < 128 && !Character.isLetterOrDigit(c) && c != '_') {
                out.append('\\');
            }
            out.append(c);
        }
        return out.toString();
    }

    /**
     * The shortest dotted suffix of {@code path} that Hugging Face's list rule matches on no module
     * outside {@code selected}; a suffix that would start with an index ({@code 0.self_attn.q_proj})
     * grows by one component for readability. {@code null} when even the whole path matches
     * another module (a nested module whose path ends in it) or is not a name.
     */
    private static String uniqueSuffix(
            String path, Set<String> selected, Collection<String> modulePaths) {
        String[] parts = path.split("\\.", -1);
        for (int start = parts.length - 1; start >= 0; start--) {
            if (start > 0 && isIndex(parts[start])) {
                continue;
            }
            String suffix = String.join(".", Arrays.asList(parts).subList(start, parts.length));
            if (!TargetModules.isName(suffix) || suffix.isEmpty()) {
                return null;
            }
            if (selected.containsAll(nameMatches(suffix, modulePaths))) {
                return suffix;
            }
        }
        return null;
    }

    private static boolean isIndex(String part) {
        return !part.isEmpty() && part.chars().allMatch(ch -> ch >= '0' && ch <= '9');
    }

    private static Set<String> nameMatches(String name, Collection<String> modulePaths) {
        Set<String> out = new LinkedHashSet<>();
        for (String path : modulePaths) {
            if (path.equals(name) || path.endsWith('.' + name)) {
                out.add(path);
            }
        }
        return out;
    }

    private static Set<String> fullMatches(List<String> regexes, Collection<String> modulePaths) {
        List<Pattern> patterns = new ArrayList<>();
        regexes.forEach(r -> patterns.add(Pattern.compile(r)));
        Set<String> out = new LinkedHashSet<>();
        for (String path : modulePaths) {
            for (Pattern pattern : patterns) {
                if (pattern.matcher(path).matches()) {
                    out.add(path);
                    break;
                }
            }
        }
        return out;
    }

    /** The targets as one full-match regex with the meaning peft4j gives them. */
    private static String asOneRegex(TargetModules targets) {
        if (targets.isSingleRegex()) {
            return targets.getEntries().get(0);
        }
        List<String> parts = new ArrayList<>();
        for (String entry : targets.getEntries()) {
            parts.add(
                    TargetModules.isName(entry)
                            ? "(?:.*\\.)?" + escape(entry)
                            : "(?:" + entry + ")");
        }
        return String.join("|", parts);
    }

    private static String pythonRegexOrNull(String regex) {
        try {
            checkPythonRegex(regex);
            return regex;
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    private static IllegalArgumentException notPython(String regex, String construct, String why) {
        return new IllegalArgumentException(
                "target pattern \""
                        + regex
                        + "\" uses "
                        + construct
                        + ", which Java and Python's re (Hugging Face PEFT, PaddleNLP) do not read"
                        + " alike: "
                        + why
                        + ". Use literals, ., [...], (...), (?:...), |, * + ? {m,n}, ^ $ and"
                        + " backslash-escaped punctuation, or a list of module names (q_proj);"
                        + " LoRAModel.savePretrained writes the adapted layers' names whenever"
                        + " they are unique");
    }
}
