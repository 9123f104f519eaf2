/**
 * Prefix tuning (Li and Liang, 2021) for causal language models: {@code P} learned key/value
 * vectors per layer that every attention layer attends to before the real tokens, with only the
 * prefix trained.
 *
 * <pre>
 *   prefix = encoder(0 .. P-1)                        [P, 2 * L * kvHeads * headDim]
 *   key_l, value_l = prefix reshaped                  [B, kvHeads, P, headDim] for each layer l
 *   attention over (prefix, past, new tokens); mask gains P ones; positions shift by P
 * </pre>
 *
 * <p>{@link org.peft4j.prefix.PrefixConfig} describes the prefix, {@link
 * org.peft4j.prefix.PrefixEncoder} produces it (an embedding, or with {@code prefix_projection} an
 * embedding followed by Linear-Tanh-Linear), and {@link org.peft4j.prefix.PrefixModelForCausalLM}
 * feeds it to any model that implements peft-core's {@link org.peft4j.core.lm.CausalLanguageModel}.
 */
package org.peft4j.prefix;
