package org.peft4j.models.chat;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.el.TruthyTypeConverter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;

import jinjava.de.odysseus.el.ExpressionFactoryImpl;
import jinjava.de.odysseus.el.tree.TreeBuilder;
import jinjava.javax.el.CompositeELResolver;
import jinjava.javax.el.ExpressionFactory;

import com.hubspot.jinjava.LegacyOverrides;

import java.util.Properties;

/**
 * Jinjava set up as transformers sets up jinja2 for chat templates ({@code
 * _compile_jinja_template}): trim_blocks and lstrip_blocks on, {@code break}/{@code continue}
 * (jinjava has them), the globals {@code raise_exception} and {@code strftime_now}, {@code tojson}
 * as {@code json.dumps}; plus what jinjava lacks of jinja2: Python string methods, {@code
 * [::step]} slices, Python's {@code trim}, and Python's spelling of printed lists.
 */
final class PyJinjava extends Jinjava {

    /**
     * The jinja2 behaviours jinjava keeps behind flags: dict keys evaluated, maps iterated by key,
     * values printed as Python prints them, {@code {{-} and {@code {#-}
     * trimming, none kept in loops. Not {@code withWhitespaceRequiredWithinTokens}, which would
     * stop {@code {%-} from opening a tag, nor {@code withUseNaturalOperatorPrecedence}, which
     * reads {@code not x is defined} as {@code (not x) is defined}; {@link PyParser} puts
     * {@code not} where jinja2 does.
     */
    private static final LegacyOverrides PYTHON_BEHAVIOUR =
            LegacyOverrides.newBuilder()
                    .withEvaluateMapKeys(true)
                    .withIterateOverMapKeys(true)
                    .withUsePyishObjectMapper(true)
                    .withParseWhitespaceControlStrictly(true)
                    .withAllowAdjacentTextNodes(true)
                    .withUseTrimmingForNotesAndExpressions(true)
                    .withKeepNullableLoopValues(true)
                    .build();

    private final ExpressionFactory expressions;

    /** Creates the environment. */
    PyJinjava() {
        super(config().build());
        Properties properties = new Properties();
        properties.setProperty(TreeBuilder.class.getName(), PySyntaxBuilder.class.getName());
        expressions = new ExpressionFactoryImpl(properties, new TruthyTypeConverter());
        getGlobalContext().registerFilter(new TojsonFilter());
        getGlobalContext().registerFilter(new TrimFilter());
        getGlobalContext()
                .registerFunction(
                        new ELFunctionDefinition(
                                "",
                                "raise_exception",
                                TemplateFunctions.class,
                                "raiseException",
                                Object.class));
        getGlobalContext()
                .registerFunction(
                        new ELFunctionDefinition(
                                "",
                                "strftime_now",
                                TemplateFunctions.class,
                                "strftimeNow",
                                String.class));
    }

    /**
     * Returns the configuration every render starts from; a render adds its clock.
     *
     * @return a builder of the configuration
     */
    static JinjavaConfig.Builder config() {
        CompositeELResolver resolver = new CompositeELResolver();
        resolver.add(new PyStringResolver());
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
        return JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .withLegacyOverrides(PYTHON_BEHAVIOUR)
                .withInterperterFactory(PyInterpreter.FACTORY)
                .withElResolver(resolver);
    }

    /** {@inheritDoc} */
    @Override
    public ExpressionFactory getExpressionFactory() {
        // the base class builds its factory with its own parser; this one adds [::step]
        return expressions;
    }
}
