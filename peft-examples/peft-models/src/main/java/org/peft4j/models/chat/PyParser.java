package org.peft4j.models.chat;

import com.hubspot.jinjava.el.ext.AstRangeBracket;
import com.hubspot.jinjava.el.ext.ExtendedParser;
import com.hubspot.jinjava.el.ext.NamedParameterOperator;

import jinjava.de.odysseus.el.tree.Bindings;
import jinjava.de.odysseus.el.tree.impl.Builder;
import jinjava.de.odysseus.el.tree.impl.Scanner;
import jinjava.de.odysseus.el.tree.impl.ast.AstNode;
import jinjava.de.odysseus.el.tree.impl.ast.AstRightValue;
import jinjava.de.odysseus.el.tree.impl.ast.AstUnary;
import jinjava.javax.el.ELContext;

/**
 * Jinjava's expression parser, corrected where jinja2 parses differently:
 *
 * <ul>
 *   <li>the stepped slice {@code seq[::step]} (Qwen3's template walks {@code messages[::-1]}),
 *       which jinjava rejects: jinjava parses {@code [a:b]} as an optional start, a colon, an
 *       optional end; here an end that begins with a second colon is read as a step;
 *   <li>a keyword argument's value is a whole expression ({@code namespace(i=messages|length -
 *       1)}), where jinjava stops it before {@code +} or {@code -};
 *   <li>{@code not} applies to a whole comparison ({@code not 'a' in s} is {@code not ('a' in
 *       s)}), where jinjava applies it to the next value.
 * </ul>
 */
final class PyParser extends ExtendedParser {

    private boolean stepNext;

    /**
     * Creates a parser for one expression.
     *
     * @param context the tree builder
     * @param input the expression
     */
    PyParser(Builder context, String input) {
        super(context, input);
    }

    /** {@inheritDoc} */
    @Override
    protected AstNode expr(boolean required)
            throws Scanner.ScanException, jinjava.de.odysseus.el.tree.impl.Parser.ParseException {
        if (isColon(getToken())) {
            if (stepNext) {
                // the second colon of [::step]: what follows is the step
                stepNext = false;
                consumeToken();
                return new Step(super.expr(true));
            }
            if (isColon(lookahead(0))) {
                // the empty start of [::step]
                stepNext = true;
                return null;
            }
        }
        return super.expr(required);
    }

    /** {@inheritDoc} */
    @Override
    protected AstNode add(boolean required)
            throws Scanner.ScanException, jinjava.de.odysseus.el.tree.impl.Parser.ParseException {
        Scanner.Token next = lookahead(0);
        if (getToken().getSymbol() == Scanner.Symbol.IDENTIFIER
                && next.getSymbol() == Scanner.Symbol.EXTENSION
                && "=".equals(next.getImage())) {
            AstNode name = identifier(consumeToken().getImage());
            consumeToken();
            return NamedParameterOperator.HANDLER.createAstNode(name, expr(true));
        }
        return super.add(required);
    }

    /** {@inheritDoc} */
    @Override
    protected AstNode unary(boolean required)
            throws Scanner.ScanException, jinjava.de.odysseus.el.tree.impl.Parser.ParseException {
        if (getToken().getSymbol() == Scanner.Symbol.NOT) {
            consumeToken();
            return createAstUnary(eq(true), AstUnary.NOT);
        }
        return super.unary(required);
    }

    /** {@inheritDoc} */
    @Override
    protected AstRangeBracket createAstRangeBracket(
            AstNode base, AstNode start, AstNode end, boolean lvalue, boolean strict) {
        if (end instanceof Step) {
            return new SteppedSlice(base, ((Step) end).step, lvalue, strict);
        }
        return super.createAstRangeBracket(base, start, end, lvalue, strict);
    }

    private static boolean isColon(Scanner.Token token) {
        // the parser also spells "else" as a colon token
        return token != null
                && token.getSymbol() == Scanner.Symbol.COLON
                && ":".equals(token.getImage());
    }

    /** The step of {@code [::step]} while the bracket is parsed; never evaluated. */
    private static final class Step extends AstRightValue {

        private final AstNode step;

        Step(AstNode step) {
            this.step = step;
        }

        @Override
        public Object eval(Bindings bindings, ELContext context) {
            throw new IllegalStateException("a slice step is evaluated by its slice");
        }

        @Override
        public void appendStructure(StringBuilder b, Bindings bindings) {
            b.append("::");
            step.appendStructure(b, bindings);
        }

        @Override
        public int getCardinality() {
            return 1;
        }

        @Override
        public AstNode getChild(int i) {
            return i == 0 ? step : null;
        }
    }
}
