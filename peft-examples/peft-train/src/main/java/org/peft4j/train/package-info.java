/**
 * The fine-tuning loop of the examples: AdamW with its state in arrays that checkpoints save,
 * warmup then linear or cosine decay, global-norm gradient clipping, gradient accumulation,
 * evaluation, checkpoints that a run resumes from exactly, a progress bar, a metrics file and a
 * loss curve.
 */
package org.peft4j.train;
