package org.peft4j.models.chat;

import com.hubspot.jinjava.objects.collections.PyList;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The methods of Python's {@code str} that chat templates call ({@code content.strip('\n')},
 * {@code content.split('</think>')[-1]}, ...), with Python's semantics: Java's own {@code split}
 * takes a regular expression and drops trailing empty parts, and {@code startswith} and friends do
 * not exist there, so jinjava alone cannot run these templates.
 */
final class PyStrings {

    private PyStrings() {}

    /**
     * Tells whether {@code name} is a string method this class implements.
     *
     * @param name the method name as the template spells it
     * @return whether {@link #invoke} handles it
     */
    static boolean handles(String name) {
        switch (name) {
            case "strip":
            case "lstrip":
            case "rstrip":
            case "split":
            case "startswith":
            case "endswith":
            case "upper":
            case "lower":
            case "title":
            case "capitalize":
            case "replace":
            case "find":
            case "count":
            case "join":
                return true;
            default:
                return false;
        }
    }

    /**
     * Calls a Python string method.
     *
     * @param s the string
     * @param name the method, one that {@link #handles} accepts
     * @param args the arguments as the template gave them
     * @return what Python returns
     * @throws IllegalArgumentException if the arguments do not fit the method
     */
    static Object invoke(String s, String name, Object[] args) {
        switch (name) {
            case "strip":
                return strip(s, chars(name, args), true, true);
            case "lstrip":
                return strip(s, chars(name, args), true, false);
            case "rstrip":
                return strip(s, chars(name, args), false, true);
            case "split":
                return split(s, args);
            case "startswith":
                return affix(s, arg(name, args, 0), true);
            case "endswith":
                return affix(s, arg(name, args, 0), false);
            case "upper":
                return s.toUpperCase(Locale.ROOT);
            case "lower":
                return s.toLowerCase(Locale.ROOT);
            case "title":
                return title(s);
            case "capitalize":
                return s.isEmpty()
                        ? s
                        : s.substring(0, 1).toUpperCase(Locale.ROOT)
                                + s.substring(1).toLowerCase(Locale.ROOT);
            case "replace":
                return replace(s, args);
            case "find":
                return s.indexOf(text(name, arg(name, args, 0)));
            case "count":
                return count(s, text(name, arg(name, args, 0)));
            case "join":
                return join(s, arg(name, args, 0));
            default:
                throw new IllegalArgumentException("no string method " + name);
        }
    }

    /**
     * Tells whether a character is whitespace as Python's {@code str.isspace} sees it.
     *
     * @param c the character
     * @return whether {@code strip()} removes it
     */
    static boolean isSpace(char c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == '\u0085';
    }

    /**
     * Python's {@code strip}, {@code lstrip} or {@code rstrip}.
     *
     * @param s the string
     * @param chars the characters to remove, or null for whitespace
     * @param left whether to strip the start
     * @param right whether to strip the end
     * @return the stripped string
     */
    static String strip(String s, String chars, boolean left, boolean right) {
        int start = 0;
        int end = s.length();
        while (left && start < end && strips(s.charAt(start), chars)) {
            start++;
        }
        while (right && end > start && strips(s.charAt(end - 1), chars)) {
            end--;
        }
        return s.substring(start, end);
    }

    private static boolean strips(char c, String chars) {
        return chars == null ? isSpace(c) : chars.indexOf(c) >= 0;
    }

    private static String chars(String name, Object[] args) {
        Object chars = args.length > 0 ? args[0] : null;
        return chars == null ? null : text(name, chars);
    }

    private static PyList split(String s, Object[] args) {
        Object sep = args.length > 0 ? args[0] : null;
        int max = args.length > 1 ? ((Number) args[1]).intValue() : -1;
        List<Object> parts = new ArrayList<>();
        if (sep == null) {
            splitOnWhitespace(s, max, parts);
        } else {
            String separator = text("split", sep);
            if (separator.isEmpty()) {
                throw new IllegalArgumentException("split: empty separator");
            }
            int from = 0;
            int at;
            while ((max < 0 || parts.size() < max) && (at = s.indexOf(separator, from)) >= 0) {
                parts.add(s.substring(from, at));
                from = at + separator.length();
            }
            parts.add(s.substring(from));
        }
        return new PyList(parts);
    }

    private static void splitOnWhitespace(String s, int max, List<Object> parts) {
        int i = 0;
        int n = s.length();
        while (true) {
            while (i < n && isSpace(s.charAt(i))) {
                i++;
            }
            if (i == n) {
                return;
            }
            if (max >= 0 && parts.size() == max) {
                // Python keeps the rest, trailing whitespace stripped
                parts.add(strip(s.substring(i), null, false, true));
                return;
            }
            int start = i;
            while (i < n && !isSpace(s.charAt(i))) {
                i++;
            }
            parts.add(s.substring(start, i));
        }
    }

    private static boolean affix(String s, Object affix, boolean prefix) {
        if (affix instanceof Iterable) {
            // Python accepts a tuple of candidates
            for (Object one : (Iterable<?>) affix) {
                if (affix(s, one, prefix)) {
                    return true;
                }
            }
            return false;
        }
        String text = text(prefix ? "startswith" : "endswith", affix);
        return prefix ? s.startsWith(text) : s.endsWith(text);
    }

    private static String title(String s) {
        StringBuilder out = new StringBuilder(s.length());
        boolean previousCased = false;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            out.append(previousCased ? Character.toLowerCase(c) : Character.toTitleCase(c));
            previousCased = Character.isLetter(c);
        }
        return out.toString();
    }

    private static String replace(String s, Object[] args) {
        String old = text("replace", arg("replace", args, 0));
        String replacement = text("replace", arg("replace", args, 1));
        int max = args.length > 2 ? ((Number) args[2]).intValue() : -1;
        if (max < 0) {
            return s.replace(old, replacement);
        }
        StringBuilder out = new StringBuilder();
        int from = 0;
        int at;
        for (int done = 0; done < max && (at = s.indexOf(old, from)) >= 0; done++) {
            out.append(s, from, at).append(replacement);
            from = at + old.length();
            if (old.isEmpty()) {
                // an empty pattern matches between characters, as in Python
                if (from < s.length()) {
                    out.append(s.charAt(from));
                }
                from++;
            }
        }
        return from <= s.length() ? out.append(s.substring(from)).toString() : out.toString();
    }

    private static int count(String s, String part) {
        if (part.isEmpty()) {
            return s.length() + 1;
        }
        int count = 0;
        for (int at = s.indexOf(part); at >= 0; at = s.indexOf(part, at + part.length())) {
            count++;
        }
        return count;
    }

    private static String join(String s, Object items) {
        if (!(items instanceof Iterable)) {
            throw new IllegalArgumentException("join: the argument is not a list");
        }
        StringBuilder out = new StringBuilder();
        boolean first = true;
        for (Object item : (Iterable<?>) items) {
            if (!first) {
                out.append(s);
            }
            out.append(text("join", item));
            first = false;
        }
        return out.toString();
    }

    private static Object arg(String name, Object[] args, int i) {
        if (args.length <= i) {
            throw new IllegalArgumentException(name + ": missing argument " + (i + 1));
        }
        return args[i];
    }

    private static String text(String name, Object value) {
        if (!(value instanceof String)) {
            throw new IllegalArgumentException(
                    name + ": expected a string, got " + (value == null ? "none" : value));
        }
        return (String) value;
    }
}
