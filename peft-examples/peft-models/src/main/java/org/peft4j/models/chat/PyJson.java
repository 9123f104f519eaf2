package org.peft4j.models.chat;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;

/**
 * Python's {@code json.dumps} output for the values a template sees (maps, lists, strings, numbers,
 * booleans, none): transformers replaces jinja2's {@code tojson} with {@code json.dumps}, whose
 * separators ({@code ", "}, {@code ": "}), indentation and float spelling differ from Jackson's.
 */
final class PyJson {

    private final String indent;
    private final String itemSeparator;
    private final String keySeparator;
    private final boolean sortKeys;
    private final boolean ensureAscii;

    /**
     * Creates a writer with {@code json.dumps}'s options.
     *
     * @param indent the indent of one level, or null for one line
     * @param separators the item and key separators, or null for Python's defaults
     * @param sortKeys whether to sort mapping keys
     * @param ensureAscii whether to write non-ASCII characters as {@code \\uXXXX}
     */
    PyJson(String indent, List<String> separators, boolean sortKeys, boolean ensureAscii) {
        this.indent = indent;
        // Python's defaults: no space before a newline when indenting
        this.itemSeparator = separators != null ? separators.get(0) : indent == null ? ", " : ",";
        this.keySeparator = separators != null ? separators.get(1) : ": ";
        this.sortKeys = sortKeys;
        this.ensureAscii = ensureAscii;
    }

    /**
     * Writes a value.
     *
     * @param value the value
     * @return its JSON text as Python writes it
     */
    String dumps(Object value) {
        StringBuilder out = new StringBuilder();
        write(value, 0, out);
        return out.toString();
    }

    private void write(Object value, int depth, StringBuilder out) {
        if (value == null) {
            out.append("null");
        } else if (value instanceof String) {
            string((String) value, out);
        } else if (value instanceof Boolean) {
            out.append(((Boolean) value) ? "true" : "false");
        } else if (value instanceof Double || value instanceof Float) {
            out.append(floatRepr(((Number) value).doubleValue()));
        } else if (value instanceof Number) {
            out.append(value);
        } else if (value instanceof Map) {
            map((Map<?, ?>) value, depth, out);
        } else if (value instanceof Collection) {
            list((Collection<?>) value, depth, out);
        } else if (value instanceof Object[]) {
            list(List.of((Object[]) value), depth, out);
        } else {
            throw new IllegalArgumentException(
                    "tojson: " + value.getClass().getSimpleName() + " is not JSON serializable");
        }
    }

    private void map(Map<?, ?> map, int depth, StringBuilder out) {
        if (map.isEmpty()) {
            out.append("{}");
            return;
        }
        List<Map.Entry<?, ?>> entries = new ArrayList<>(map.entrySet());
        if (sortKeys) {
            entries.sort((a, b) -> key(a.getKey()).compareTo(key(b.getKey())));
        }
        out.append('{');
        boolean first = true;
        for (Map.Entry<?, ?> entry : entries) {
            separate(first, depth + 1, out);
            string(key(entry.getKey()), out);
            out.append(keySeparator);
            write(entry.getValue(), depth + 1, out);
            first = false;
        }
        close(depth, out);
        out.append('}');
    }

    private void list(Collection<?> list, int depth, StringBuilder out) {
        if (list.isEmpty()) {
            out.append("[]");
            return;
        }
        out.append('[');
        boolean first = true;
        for (Object item : list) {
            separate(first, depth + 1, out);
            write(item, depth + 1, out);
            first = false;
        }
        close(depth, out);
        out.append(']');
    }

    private void separate(boolean first, int depth, StringBuilder out) {
        if (!first) {
            out.append(itemSeparator);
        }
        newline(depth, out);
    }

    private void close(int depth, StringBuilder out) {
        newline(depth, out);
    }

    private void newline(int depth, StringBuilder out) {
        if (indent != null) {
            out.append('\n').append(indent.repeat(depth));
        }
    }

    private static String key(Object key) {
        // Python turns non-string keys into their JSON spelling
        if (key instanceof String) {
            return (String) key;
        }
        if (key == null) {
            return "null";
        }
        if (key instanceof Boolean) {
            return ((Boolean) key) ? "true" : "false";
        }
        if (key instanceof Double || key instanceof Float) {
            return floatRepr(((Number) key).doubleValue());
        }
        return key.toString();
    }

    private void string(String s, StringBuilder out) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"':
                    out.append("\\\"");
                    break;
                case '\\':
                    out.append("\\\\");
                    break;
                case '\n':
                    out.append("\\n");
                    break;
                case '\r':
                    out.append("\\r");
                    break;
                case '\t':
                    out.append("\\t");
                    break;
                case '\b':
                    out.append("\\b");
                    break;
                case '\f':
                    out.append("\\f");
                    break;
                default:
                    if (c < 0x20 || (ensureAscii && c > 0x7e)) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
            }
        }
        out.append('"');
    }

    /**
     * Spells a float as Python's {@code repr} does: the shortest digits that read back the same,
     * in positional form for exponents from -4 to 15 and as {@code 1e-05} beyond.
     *
     * @param d the number
     * @return its Python spelling
     */
    static String floatRepr(double d) {
        if (Double.isNaN(d)) {
            return "NaN";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "Infinity" : "-Infinity";
        }
        if (d == 0) {
            return (1 / d < 0) ? "-0.0" : "0.0";
        }
        // Java's Double.toString already has the shortest round-tripping digits
        BigDecimal exact = new BigDecimal(Double.toString(d)).stripTrailingZeros();
        String digits = exact.unscaledValue().abs().toString();
        int exponent = digits.length() - 1 - exact.scale();
        String sign = d < 0 ? "-" : "";
        if (exponent >= -4 && exponent < 16) {
            String plain = exact.abs().toPlainString();
            return sign + (plain.contains(".") ? plain : plain + ".0");
        }
        String mantissa =
                digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
        String power = String.format("%s%02d", exponent < 0 ? "-" : "+", Math.abs(exponent));
        return sign + mantissa + "e" + power;
    }
}
