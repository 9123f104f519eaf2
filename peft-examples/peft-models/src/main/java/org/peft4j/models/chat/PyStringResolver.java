package org.peft4j.models.chat;

import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

import java.beans.FeatureDescriptor;
import java.util.Iterator;

/**
 * Resolves method calls on strings to Python's {@code str} methods ({@link PyStrings}) before
 * jinjava's resolvers try Java's methods of the same or similar names. It resolves nothing else.
 */
final class PyStringResolver extends ELResolver {

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
        return null;
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
