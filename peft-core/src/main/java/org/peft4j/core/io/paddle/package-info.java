/**
 * Reading the files PaddleNLP saves adapters to, without Python: {@code paddle.save}'s pickles
 * ({@code .pdparams}) run under an unpickler that admits only numpy's array and dtype
 * reconstruction and {@code collections.OrderedDict}, tensor-parallel rank files ({@code
 * NAME.tpRR.pdparams}) and the unified checkpoint's safetensors. Arrays come out under Paddle's
 * names and in Paddle's layout ({@code Linear} weights {@code [in, out]}); bfloat16 (numpy {@code
 * uint16} on disk) becomes float32.
 */
package org.peft4j.core.io.paddle;
