package org.peft4j.models.chat;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * {@code tojson} as transformers defines it for chat templates: Python's {@code json.dumps(x,
 * ensure_ascii=False, indent=None, separators=None, sort_keys=False)}, taking those options by
 * name or in that order. Unlike jinja2's own filter it does not escape HTML characters.
 */
final class TojsonFilter extends PyFilter {

    private static final List<String> OPTIONS =
            List.of("ensure_ascii", "indent", "separators", "sort_keys");

    /** {@inheritDoc} */
    @Override
    public String getName() {
        return "tojson";
    }

    /** {@inheritDoc} */
    @Override
    public Object filter(
            Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
        Object[] options = new Object[OPTIONS.size()];
        for (int i = 0; i < args.length && i < options.length; i++) {
            options[i] = args[i];
        }
        for (Map.Entry<String, Object> entry : kwargs.entrySet()) {
            int at = OPTIONS.indexOf(entry.getKey());
            if (at < 0) {
                throw new IllegalArgumentException(
                        "tojson: unknown option " + entry.getKey() + " (takes " + OPTIONS + ")");
            }
            options[at] = entry.getValue();
        }
        PyJson json =
                new PyJson(
                        indent(options[1]),
                        separators(options[2]),
                        Boolean.TRUE.equals(options[3]),
                        Boolean.TRUE.equals(options[0]));
        return json.dumps(var);
    }

    private static String indent(Object indent) {
        if (indent == null) {
            return null;
        }
        if (indent instanceof Number) {
            return " ".repeat(Math.max(0, ((Number) indent).intValue()));
        }
        return indent.toString();
    }

    private static List<String> separators(Object separators) {
        if (separators == null) {
            return null;
        }
        List<String> pair = new ArrayList<>();
        if (separators instanceof Iterable) {
            for (Object one : (Iterable<?>) separators) {
                pair.add(String.valueOf(one));
            }
        }
        if (pair.size() != 2) {
            throw new IllegalArgumentException(
                    "tojson: separators must be two strings (item, key), got " + separators);
        }
        return pair;
    }
}
