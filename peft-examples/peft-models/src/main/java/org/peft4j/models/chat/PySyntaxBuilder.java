package org.peft4j.models.chat;

import com.hubspot.jinjava.el.ExtendedSyntaxBuilder;

import jinjava.de.odysseus.el.tree.impl.Parser;

/** Builds expression trees with {@link PyParser}; the EL factory creates it by its name. */
public final class PySyntaxBuilder extends ExtendedSyntaxBuilder {

    private static final long serialVersionUID = 1L;

    /**
     * Creates the builder; the expression factory calls this with the features it enables.
     *
     * @param features the EL features
     */
    public PySyntaxBuilder(Feature... features) {
        super(features);
    }

    /** {@inheritDoc} */
    @Override
    protected Parser createParser(String expression) {
        return new PyParser(this, expression);
    }
}
