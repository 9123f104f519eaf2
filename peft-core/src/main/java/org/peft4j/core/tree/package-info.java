/**
 * The block tree as Hugging Face and PaddleNLP see a model: dotted logical paths such as {@code
 * model.layers.3.self_attn.q_proj}, target matching on those paths, and replacement of a block so
 * that its parent's forward pass really calls the replacement.
 *
 * <p>A logical path segment is a child's key without the two-digit position prefix DJL adds ({@code
 * 01q_proj} is {@code q_proj}), except below a {@link ai.djl.nn.SequentialBlock} or {@link
 * ai.djl.nn.ParallelBlock}, whose children are named by their 0-based position as PyTorch's {@code
 * nn.Sequential} names them. A parameter's path is its block's path, a dot and the parameter's name
 * ({@code model.layers.3.self_attn.q_proj.weight}).
 */
package org.peft4j.core.tree;
