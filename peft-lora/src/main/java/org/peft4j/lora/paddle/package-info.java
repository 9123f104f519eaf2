/**
 * LoRA adapters as PaddleNLP saves them: {@code lora_config.json} (read by {@link
 * org.peft4j.lora.LoRAConfig}) with {@code lora_model_state.pdparams}, its per-rank files, or the
 * unified checkpoint's {@code peft_model.safetensors}. {@link
 * org.peft4j.lora.paddle.PaddleLoRAFiles} reads the weights under Hugging Face's names and layout
 * ({@link org.peft4j.lora.paddle.PaddleLoRAKeys}), so {@link
 * org.peft4j.lora.LoRAModel#fromPretrained} loads such a directory as it loads Hugging Face's.
 */
package org.peft4j.lora.paddle;
