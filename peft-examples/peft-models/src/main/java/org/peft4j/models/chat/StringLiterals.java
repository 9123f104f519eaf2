package org.peft4j.models.chat;

/**
 * Rewrites the string literals inside a template's tags from Python's escapes, which jinja2
 * decodes ({@code unicode-escape}: {@code \n}, {@code \t}, <code>&#92;xHH</code>,
 * <code>&#92;uHHHH</code>, a backslash before a line break continuing the line, ...), to the text
 * jinjava reads the same: the decoded characters, with only backslashes and the literal's quote
 * escaped. Mistral's templates, for one, continue a long default system message over lines with a
 * backslash, which jinjava alone cannot parse.
 *
 * <p>Text outside tags, comments and {@code raw} blocks are copied as they are.
 */
final class StringLiterals {

    private StringLiterals() {}

    /**
     * Returns the template with its tags' string literals in jinjava's escapes.
     *
     * @param template the Jinja source
     * @return the same template for jinjava
     */
    static String forJinjava(String template) {
        StringBuilder out = new StringBuilder(template.length());
        int i = 0;
        while (i < template.length()) {
            int open = nextTag(template, i);
            if (open < 0) {
                out.append(template, i, template.length());
                break;
            }
            out.append(template, i, open);
            char kind = template.charAt(open + 1);
            if (kind == '#') {
                int end = template.indexOf("#}", open + 2);
                end = end < 0 ? template.length() : end + 2;
                out.append(template, open, end);
                i = end;
            } else if (kind == '%' && isRaw(template, open)) {
                int end = endOfRaw(template, open);
                out.append(template, open, end);
                i = end;
            } else {
                i = copyTag(template, open, kind == '{' ? "}}" : "%}", out);
            }
        }
        return out.toString();
    }

    private static int nextTag(String t, int from) {
        int i = t.indexOf('{', from);
        while (i >= 0 && i + 1 < t.length()) {
            char c = t.charAt(i + 1);
            if (c == '{' || c == '%' || c == '#') {
                return i;
            }
            i = t.indexOf('{', i + 1);
        }
        return -1;
    }

    private static boolean isRaw(String t, int open) {
        int i = open + 2;
        while (i < t.length() && (t.charAt(i) == '-' || t.charAt(i) == '+' || isSpace(t, i))) {
            i++;
        }
        return t.startsWith("raw", i) && (i + 3 >= t.length() || !isWord(t.charAt(i + 3)));
    }

    private static int endOfRaw(String t, int open) {
        int i = t.indexOf("endraw", open);
        if (i < 0) {
            return t.length();
        }
        int end = t.indexOf("%}", i);
        return end < 0 ? t.length() : end + 2;
    }

    /** Copies one tag, rewriting its literals; returns the index after its end. */
    private static int copyTag(String t, int open, String close, StringBuilder out) {
        out.append(t, open, open + 2);
        int i = open + 2;
        while (i < t.length()) {
            char c = t.charAt(i);
            if (c == '\'' || c == '"') {
                i = copyLiteral(t, i, out);
            } else if (t.startsWith(close, i)) {
                out.append(close);
                return i + close.length();
            } else {
                out.append(c);
                i++;
            }
        }
        return i;
    }

    /** Decodes one literal as jinja2 does and writes it back in jinjava's escapes. */
    private static int copyLiteral(String t, int start, StringBuilder out) {
        char quote = t.charAt(start);
        StringBuilder text = new StringBuilder();
        int i = start + 1;
        while (i < t.length() && t.charAt(i) != quote) {
            char c = t.charAt(i);
            if (c != '\\' || i + 1 >= t.length()) {
                text.append(c);
                i++;
                continue;
            }
            i = unescape(t, i, text);
        }
        out.append(quote);
        for (int k = 0; k < text.length(); k++) {
            char c = text.charAt(k);
            if (c == '\\' || c == quote) {
                out.append('\\');
            }
            out.append(c);
        }
        out.append(quote);
        return Math.min(i + 1, t.length());
    }

    /** Decodes the escape at {@code t[i] == '\\'}; returns the index after it. */
    private static int unescape(String t, int i, StringBuilder text) {
        char e = t.charAt(i + 1);
        switch (e) {
            case '\n':
                return i + 2; // a continued line
            case '\r':
                return t.startsWith("\r\n", i + 1) ? i + 3 : i + 2;
            case 'n':
                text.append('\n');
                return i + 2;
            case 't':
                text.append('\t');
                return i + 2;
            case 'r':
                text.append('\r');
                return i + 2;
            case 'a':
                text.append('\u0007');
                return i + 2;
            case 'b':
                text.append('\b');
                return i + 2;
            case 'f':
                text.append('\f');
                return i + 2;
            case 'v':
                text.append('\u000B');
                return i + 2;
            case '\\':
            case '\'':
            case '"':
                text.append(e);
                return i + 2;
            case 'x':
                return hex(t, i, 2, text);
            case 'u':
                return hex(t, i, 4, text);
            case 'U':
                return hex(t, i, 8, text);
            default:
                if (e >= '0' && e <= '7') {
                    int end = i + 1;
                    while (end < t.length() && end < i + 4 && t.charAt(end) >= '0'
                            && t.charAt(end) <= '7') {
                        end++;
                    }
                    text.append((char) Integer.parseInt(t.substring(i + 1, end), 8));
                    return end;
                }
                // Python keeps an unknown escape as it is
                text.append('\\').append(e);
                return i + 2;
        }
    }

    private static int hex(String t, int i, int digits, StringBuilder text) {
        int end = i + 2 + digits;
        if (end > t.length() || !t.substring(i + 2, end).matches("[0-9a-fA-F]+")) {
            throw new ChatTemplateException(
                    "a string literal's \\"
                            + t.charAt(i + 1)
                            + " escape needs "
                            + digits
                            + " hexadecimal digits, at character "
                            + i
                            + " of the template");
        }
        long code = Long.parseLong(t.substring(i + 2, end), 16);
        if (code > Character.MAX_CODE_POINT) {
            throw new ChatTemplateException(
                    "a string literal's escape \\"
                            + t.substring(i + 1, end)
                            + " is beyond Unicode, at character "
                            + i
                            + " of the template");
        }
        text.appendCodePoint((int) code);
        return end;
    }

    private static boolean isSpace(String t, int i) {
        return Character.isWhitespace(t.charAt(i));
    }

    private static boolean isWord(char c) {
        return Character.isLetterOrDigit(c) || c == '_';
    }
}
