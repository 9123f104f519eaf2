/**
 * The benchmark: throughput, step time and peak memory of inference, LoRA, prefix and full
 * fine-tuning, and generation, on two Llama configurations, against the engine's own matrix product
 * speed.
 */
package org.peft4j.cli.bench;
