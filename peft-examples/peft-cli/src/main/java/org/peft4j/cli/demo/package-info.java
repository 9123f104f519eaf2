/**
 * The offline demo that {@code peft4j finetune} runs without {@code --model}: a small Llama learns
 * two string tasks from scratch, then LoRA teaches it a third, and exact-match accuracy shows the
 * difference.
 */
package org.peft4j.cli.demo;
