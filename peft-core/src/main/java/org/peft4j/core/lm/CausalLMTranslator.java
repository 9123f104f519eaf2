package org.peft4j.core.lm;

import ai.djl.modality.nlp.generate.CausalLMOutput;
import ai.djl.ndarray.NDList;
import ai.djl.translate.NoBatchifyTranslator;
import ai.djl.translate.TranslatorContext;

/**
 * Turns a {@link CausalLanguageModel}'s output into DJL's {@link CausalLMOutput}, for a {@code
 * Predictor<NDList, CausalLMOutput>} that drives {@code
 * ai.djl.modality.nlp.generate.TextGenerator}.
 */
public final class CausalLMTranslator implements NoBatchifyTranslator<NDList, CausalLMOutput> {

    /** Creates the translator. */
    public CausalLMTranslator() {}

    /** {@inheritDoc} */
    @Override
    public NDList processInput(TranslatorContext ctx, NDList input) {
        return input;
    }

    /** {@inheritDoc} */
    @Override
    public CausalLMOutput processOutput(TranslatorContext ctx, NDList output) {
        int last = output.size() - 1;
        return new CausalLMOutput(
                output.get(0), output.get(last), new NDList(output.subList(1, last)));
    }
}
