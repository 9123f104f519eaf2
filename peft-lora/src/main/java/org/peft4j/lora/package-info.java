/**
 * LoRA, low-rank adaptation (Hu et al., 2021), on the {@link ai.djl.nn.core.Linear} layers of any
 * DJL block tree.
 *
 * <p>A frozen layer {@code y = x W^T + b} with {@code W: [out, in]} gains two trainable matrices
 * {@code A: [r, in]} and {@code B: [out, r]}:
 *
 * <pre>
 *   y = x W^T + b + s * (dropout(x) A^T) B^T,     s = alpha / r  (alpha / sqrt(r) with rsLoRA)
 * </pre>
 *
 * <p>{@code A} starts Kaiming-uniform and {@code B} at zero, so the adapted model starts equal to
 * the base model. {@code B A} is never materialised in the forward pass; merging adds {@code s B A}
 * into {@code W} once, for inference at the base model's cost.
 *
 * <p>{@link org.peft4j.lora.LoRAConfig} describes the adapter, {@link org.peft4j.lora.LoRALinear}
 * is the adapted layer, {@link org.peft4j.lora.LoRAModel} finds the targets in a model, swaps them,
 * freezes the rest, merges, and saves and loads adapters in the Hugging Face PEFT format.
 *
 * <p>A model may hold several named adapters, as in Hugging Face PEFT: each layer then holds one
 * {@link org.peft4j.lora.LoRABranch} per adapter that targets it, the active adapters' branches
 * add, and in a mixed batch ({@link org.peft4j.lora.AdapterRows}) each row takes its own adapter's
 * branch only. {@link org.peft4j.lora.WeightedAdapters} combines adapters into one.
 */
package org.peft4j.lora;
