/**
 * Tensor parallelism across processes: a {@link org.peft4j.parallel.TensorParallel} group, the
 * frozen {@link org.peft4j.parallel.ColumnParallelLinear} and {@link
 * org.peft4j.parallel.RowParallelLinear} layers, and the LoRA layers that {@code LoRAModel} makes
 * of them. One process is one rank (DJL allows one gradient collector per JVM); collectives run on
 * real engines (Open MPI for CPU tensors, NCCL for CUDA tensors, see {@code
 * org.peft4j.parallel.comm}).
 *
 * <p>Sharding follows PaddleNLP for degree {@code T}: a column-parallel layer holds rows {@code
 * [O/T, I]} of its weight and {@code lora_B} {@code [O/T, r]} with {@code lora_A} {@code [r, I]}
 * replicated; a row-parallel layer holds columns {@code [O, I/T]} and {@code lora_A} {@code [r,
 * I/T]} with {@code lora_B} {@code [O, r]} replicated, and sums its partial products with an
 * all-reduce.
 */
package org.peft4j.parallel;
