/**
 * Reading Llama weights: Hugging Face safetensors checkpoints (single or sharded; float32, float16
 * and bfloat16, all read as float32) and llama2.c checkpoints (with their adjacent-pair rotary
 * layout permuted into Hugging Face's rotate-half layout).
 *
 * <p>Weights are read tensor by tensor straight into the parameters, so that loading never holds
 * two copies of the model.
 */
package org.peft4j.models.llama.weights;
