/**
 * Tensor- and data-parallel LoRA and prefix tuning across processes (NCCL on CUDA, MPI on CPUs).
 * Under construction: see the project's parallel issues.
 */
package org.peft4j.parallel;
