package org.peft4j.models.chat;

import com.hubspot.jinjava.el.ext.AstRangeBracket;
import com.hubspot.jinjava.objects.collections.PyList;

import jinjava.de.odysseus.el.tree.Bindings;
import jinjava.de.odysseus.el.tree.impl.ast.AstNode;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELException;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Python's {@code seq[::step]} on a list or string: every step-th item, backwards if negative. */
final class SteppedSlice extends AstRangeBracket {

    private final AstNode step;

    /**
     * Creates the slice.
     *
     * @param base the sequence
     * @param step the step
     * @param lvalue whether the node is assigned to
     * @param strict whether null properties fail
     */
    SteppedSlice(AstNode base, AstNode step, boolean lvalue, boolean strict) {
        super(base, null, null, lvalue, strict, false);
        this.step = step;
    }

    /** {@inheritDoc} */
    @Override
    public Object eval(Bindings bindings, ELContext context) {
        Object base = prefix.eval(bindings, context);
        Object stepValue = step.eval(bindings, context);
        if (!(stepValue instanceof Number) || ((Number) stepValue).intValue() == 0) {
            throw new ELException("slice step must be a non-zero integer, got " + stepValue);
        }
        int by = ((Number) stepValue).intValue();
        if (base instanceof String) {
            String s = (String) base;
            StringBuilder out = new StringBuilder();
            for (int i : indices(s.length(), by)) {
                out.append(s.charAt(i));
            }
            return out.toString();
        }
        List<Object> items = new ArrayList<>();
        if (base instanceof Iterable) {
            ((Iterable<?>) base).forEach(items::add);
        } else if (base instanceof Object[]) {
            items.addAll(Arrays.asList((Object[]) base));
        } else {
            throw new ELException("Property " + prefix + " is not a sequence.");
        }
        List<Object> out = new ArrayList<>();
        for (int i : indices(items.size(), by)) {
            out.add(items.get(i));
        }
        return new PyList(out);
    }

    private static int[] indices(int size, int by) {
        int count = (size + Math.abs(by) - 1) / Math.abs(by);
        int[] indices = new int[count];
        for (int k = 0; k < count; k++) {
            indices[k] = by > 0 ? k * by : size - 1 + k * by;
        }
        return indices;
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "[::]";
    }
}
