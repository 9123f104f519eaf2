/**
 * Llama as a tree of DJL blocks whose logical paths are Hugging Face's ({@code
 * model.layers.N.self_attn.q_proj}, ...), so that LoRA's target patterns apply verbatim, with the
 * math of Hugging Face's {@code LlamaForCausalLM}: RMSNorm, rotary position embeddings in the
 * rotate-half layout, grouped-query attention, a SwiGLU MLP, causal and padding masks, tied or
 * untied embeddings.
 *
 * <p>{@link org.peft4j.models.llama.LlamaForCausalLM} follows peft-core's causal-LM contract
 * ({@link org.peft4j.core.lm.CausalLanguageModel}) and loads Hugging Face and llama2.c checkpoints.
 */
package org.peft4j.models.llama;
