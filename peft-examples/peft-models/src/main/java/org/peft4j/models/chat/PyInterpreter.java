package org.peft4j.models.chat;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.Context;
import com.hubspot.jinjava.interpret.InterpreterFactory;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;

/**
 * Jinjava's interpreter printing {@code {{ value }}} as Python's {@code str} does: booleans as
 * {@code True} and {@code False}, floats as Python's {@code repr} ({@code 1e-05}, {@code 2.0}).
 * Undefined and none both print empty: jinjava has one null for both, and printing an undefined
 * variable (empty in jinja2) is the common case.
 */
final class PyInterpreter extends JinjavaInterpreter {

    /** Creates interpreters of this class for jinjava. */
    static final InterpreterFactory FACTORY =
            new InterpreterFactory() {
                @Override
                public JinjavaInterpreter newInstance(JinjavaInterpreter orig) {
                    return new PyInterpreter(orig);
                }

                @Override
                public JinjavaInterpreter newInstance(
                        Jinjava application, Context context, JinjavaConfig config) {
                    return new PyInterpreter(application, context, config);
                }
            };

    private PyInterpreter(Jinjava application, Context context, JinjavaConfig config) {
        super(application, context, config);
    }

    private PyInterpreter(JinjavaInterpreter orig) {
        super(orig);
    }

    /** {@inheritDoc} */
    @Override
    public String getAsString(Object object) {
        if (object instanceof Boolean) {
            return ((Boolean) object) ? "True" : "False";
        }
        if (object instanceof Double || object instanceof Float) {
            return PyJson.floatRepr(((Number) object).doubleValue());
        }
        return super.getAsString(object);
    }
}
