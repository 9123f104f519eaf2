/**
 * The causal language model contract that prefix tuning and generation rely on, in DJL's
 * text-generation convention, and generation over it.
 *
 * <p>A model that implements {@link org.peft4j.core.lm.CausalLanguageModel} takes {@code
 * NDList(inputIds, positionIds, attentionMask, pastKey_0, pastValue_0, ...)} and returns {@code
 * NDList(logits, presentKey_0, presentValue_0, ..., hiddenStates)}; {@link
 * org.peft4j.core.lm.CausalLMTranslator} turns that output into DJL's {@code CausalLMOutput}, so
 * that {@code ai.djl.modality.nlp.generate.TextGenerator} (greedy, beam, contrastive search) runs
 * on it.
 */
package org.peft4j.core.lm;
