/**
 * Llama tokenizers: text to token ids and back, from Hugging Face {@code tokenizer.json} files or
 * llama2.c {@code tokenizer.bin} files, behind one interface, {@link
 * org.peft4j.models.tokenizer.LlamaTokenizer}.
 */
package org.peft4j.models.tokenizer;
