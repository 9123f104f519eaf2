package org.peft4j.models.chat;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;

import java.util.Map;

/**
 * jinja2's {@code trim}: Python's {@code str.strip(chars)}, which removes Unicode whitespace (or
 * the given characters) where jinjava's removes control characters and spaces.
 */
final class TrimFilter extends PyFilter {

    /** {@inheritDoc} */
    @Override
    public String getName() {
        return "trim";
    }

    /** {@inheritDoc} */
    @Override
    public Object filter(
            Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
        Object chars = args.length > 0 ? args[0] : kwargs.get("chars");
        String text = var == null ? "" : var.toString();
        return PyStrings.strip(text, chars == null ? null : chars.toString(), true, true);
    }
}
