package org.peft4j.models.chat;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.Filter;

import java.util.Map;

/**
 * A filter that takes its arguments as jinja2 passes them, positional and by keyword; jinjava's
 * string-only entry point hands them over the same way.
 */
abstract class PyFilter implements Filter {

    /** {@inheritDoc} */
    @Override
    public final Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
        return filter(var, interpreter, args, Map.of());
    }

    /** {@inheritDoc} */
    @Override
    public abstract Object filter(
            Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs);
}
