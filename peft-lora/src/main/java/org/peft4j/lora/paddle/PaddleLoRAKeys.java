package org.peft4j.lora.paddle;

import ai.djl.ndarray.NDArray;

import java.util.Set;

/**
 * How PaddleNLP names and lays out a LoRA adapter's tensors, against Hugging Face PEFT's.
 *
 * <p>PaddleNLP saves {@code model.state_dict()} entries of the causal LM: its decoder sits under
 * the model's {@code base_model_prefix} ({@code llama.}, {@code qwen2.}, {@code mistral.}, ...)
 * where Hugging Face has {@code model.}, and {@code lm_head} is at the top in both. A LoRA layer's
 * matrices are parameters {@code lora_A [in, r]} and {@code lora_B [r, out]} (Paddle's {@code
 * Linear} computes {@code x W} with {@code W [in, out]}), the transposes of Hugging Face's {@code
 * lora_A.weight [r, in]} and {@code lora_B.weight [out, r]}:
 *
 * <pre>
 *   llama.layers.0.self_attn.q_proj.lora_A  [in, r]
 *     -&gt; base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight  [r, in]
 *   llama.layers.0.self_attn.q_proj.bias    [out]   (trainable_bias)
 *     -&gt; base_model.model.model.layers.0.self_attn.q_proj.bias  [out]
 * </pre>
 */
public final class PaddleLoRAKeys {

    /** Hugging Face PEFT's prefix of every saved key. */
    public static final String HF_PREFIX = "base_model.model.";

    /** PaddleNLP's ColumnParallelLinear layers of the decoder families: output split. */
    static final Set<String> COLUMN_PARALLEL =
            Set.of("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj");

    /** PaddleNLP's RowParallelLinear layers of the decoder families: input split. */
    static final Set<String> ROW_PARALLEL = Set.of("o_proj", "down_proj");

    /** PaddleNLP's fused layers ({@code fuse_attention_qkv}, {@code fuse_attention_ffn}). */
    static final Set<String> FUSED = Set.of("qkv_proj", "gate_up_fused_proj");

    private PaddleLoRAKeys() {}

    /**
     * Maps a Paddle key to Hugging Face's.
     *
     * @param key for example {@code llama.layers.0.self_attn.q_proj.lora_A}
     * @return for example {@code base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight}
     * @throws IllegalArgumentException for a key of a fused layer, or a 2-D parameter other than
     *     LoRA's (a trainable Linear weight, whose layout cannot be told from an embedding's)
     */
    public static String huggingFaceKey(String key) {
        int dot = key.indexOf('.');
        if (dot <= 0) {
            throw new IllegalArgumentException(
                    "key " + key + " is not under the model's prefix (llama., qwen2., lm_head.)");
        }
        String layer = layerName(key);
        if (FUSED.contains(layer)) {
            throw new IllegalArgumentException(
                    "key "
                            + key
                            + " belongs to PaddleNLP's fused layer "
                            + layer
                            + " (fuse_attention_qkv / fuse_attention_ffn), which peft4j's models do"
                            + " not have; train the adapter without fused layers");
        }
        String head = key.substring(0, dot);
        String path = "lm_head".equals(head) ? key : "model" + key.substring(dot);
        if (isLoRA(key)) {
            path += ".weight";
        }
        return HF_PREFIX + path;
    }

    /**
     * Converts a tensor to Hugging Face's layout.
     *
     * @param key the Paddle key
     * @param value {@code lora_A [in, r]}, {@code lora_B [r, out]}, or a 1-D parameter
     * @return a new array: the transpose for LoRA matrices, a copy otherwise
     * @throws IllegalArgumentException for a parameter of another rank; the message names it
     */
    public static NDArray toHuggingFace(String key, NDArray value) {
        int rank = value.getShape().dimension();
        if (isLoRA(key) && rank == 2) {
            return value.transpose(1, 0).duplicate();
        }
        if (!isLoRA(key) && rank == 1) {
            return value.duplicate();
        }
        throw new IllegalArgumentException(
                "key "
                        + key
                        + " has shape "
                        + value.getShape()
                        + "; converted are lora_A/lora_B matrices and 1-D parameters (biases,"
                        + " norms), not trainable_modules matrices, whose Paddle layout differs by"
                        + " layer type");
    }

    /**
     * Returns the axis along which PaddleNLP's tensor-parallel LoRA layers split a key: {@code
     * lora_B} (and the bias) of a ColumnParallelLinear along the output, {@code lora_A} of a
     * RowParallelLinear along the input; other tensors are whole on every rank.
     *
     * @param key the Paddle key
     * @return the axis of the Paddle layout, or -1 for a tensor every rank holds whole
     * @throws IllegalArgumentException for a LoRA matrix of a layer whose split is unknown
     */
    public static int splitAxis(String key) {
        String layer = layerName(key);
        boolean column = COLUMN_PARALLEL.contains(layer);
        boolean row = ROW_PARALLEL.contains(layer);
        if (key.endsWith(".lora_B")) {
            return column ? 1 : unknownUnless(row, key, layer);
        }
        if (key.endsWith(".lora_A")) {
            return row ? 0 : unknownUnless(column, key, layer);
        }
        if (key.endsWith(".bias") && column) {
            return 0;
        }
        return -1;
    }

    private static int unknownUnless(boolean known, String key, String layer) {
        if (known) {
            return -1;
        }
        throw new IllegalArgumentException(
                "key "
                        + key
                        + ": PaddleNLP's split of layer "
                        + layer
                        + " across ranks is not known here (known: column "
                        + COLUMN_PARALLEL
                        + ", row "
                        + ROW_PARALLEL
                        + "); save the adapter with merge_tensor_parallel=True");
    }

    private static boolean isLoRA(String key) {
        return key.endsWith(".lora_A") || key.endsWith(".lora_B");
    }

    /** The name of the layer a parameter belongs to: the segment before the parameter's name. */
    private static String layerName(String key) {
        int last = key.lastIndexOf('.');
        int before = key.lastIndexOf('.', last - 1);
        return last < 0 ? key : key.substring(before + 1, last);
    }
}
