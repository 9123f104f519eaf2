package org.peft4j.models.chat;

import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

import java.beans.FeatureDescriptor;
import java.util.Iterator;
import java.util.regex.Pattern;

/**
 * Resolves method calls on strings to Python's {@code str} methods ({@link PyStrings}) before
 * jinjava's resolvers try Java's methods of the same or similar names, and {@code s[i]} to the
 * i-th character. It resolves nothing else.
 */
final class PyStringResolver extends ELResolver {

    private static final Pattern INDEX = Pattern.compile("-?[0-9]{1,9}");

    /** {@inheritDoc} */
    @Override
    public Object invoke(
            ELContext context, Object base, Object method, Class<?>[] types, Object[] params) {
        if (!(base instanceof String) || method == null || !PyStrings.handles(method.toString())) {
            return null;
        }
        Object result =
                PyStrings.invoke(
                        (String) base, method.toString(), params == null ? new Object[0] : params);
        context.setPropertyResolved(true);
        return result;
    }

    /** {@inheritDoc} */
    @Override
    public Class<?> getCommonPropertyType(ELContext context, Object base) {
        return null;
    }

    /** {@inheritDoc} */
    @Override
    public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
        return null;
    }

    /** {@inheritDoc} */
    @Override
    public Class<?> getType(ELContext context, Object base, Object property) {
        return null;
    }

    /** {@inheritDoc} */
    @Override
    public Object getValue(ELContext context, Object base, Object property) {
        // s[i] and s[-i]: jinjava indexes lists but not strings; it hands the index over as text
        if (!(base instanceof String) || property == null || !INDEX.matcher(property.toString())
                .matches()) {
            return null;
        }
        String s = (String) base;
        int i = Integer.parseInt(property.toString());
        int at = i < 0 ? s.length() + i : i;
        context.setPropertyResolved(true);
        return at >= 0 && at < s.length() ? String.valueOf(s.charAt(at)) : null;
    }

    /** {@inheritDoc} */
    @Override
    public boolean isReadOnly(ELContext context, Object base, Object property) {
        return true;
    }

    /** {@inheritDoc} */
    @Override
    public void setValue(ELContext context, Object base, Object property, Object value) {
        // read only: templates cannot change strings
    }
}
