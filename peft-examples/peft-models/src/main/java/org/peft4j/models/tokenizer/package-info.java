/**
 * Llama tokenizers: text to token ids and back, from Hugging Face {@code tokenizer.json} files or
 * llama2.c {@code tokenizer.bin} files, behind one interface, {@link
 * org.peft4j.models.tokenizer.LlamaTokenizer}. Which ids are BOS, EOS (several, for generation)
 * and PAD comes from the model's Hugging Face files, {@link
 * org.peft4j.models.tokenizer.SpecialTokens}.
 */
package org.peft4j.models.tokenizer;
