/**
 * Prefixes as PaddleNLP saves them: {@code prefix_config.json} (read by {@link
 * org.peft4j.prefix.PrefixConfig}) with {@code prefix_model_state.pdparams} or its rank files,
 * read by {@link org.peft4j.prefix.paddle.PaddlePrefixFiles} as Hugging Face's {@code
 * prompt_embeddings}, so that {@link org.peft4j.prefix.PrefixModelForCausalLM#fromPretrained}
 * loads such a directory as it loads Hugging Face's.
 */
package org.peft4j.prefix.paddle;
