/**
 * Chat templates: a conversation ({@link org.peft4j.models.chat.ChatMessage}s) rendered to the
 * prompt text a chat model was trained on, from the Jinja template in a model's tokenizer files,
 * exactly as Hugging Face transformers' {@code apply_chat_template} renders it ({@link
 * org.peft4j.models.chat.ChatTemplate}).
 *
 * <p>The template runs on jinjava set up the way transformers sets up jinja2 (trim_blocks,
 * lstrip_blocks, loop controls, {@code raise_exception}, {@code strftime_now}, its {@code tojson}),
 * with the Python string methods, negative-step slices and {@code json.dumps} output that real
 * templates rely on added where jinjava differs from jinja2.
 */
package org.peft4j.models.chat;
