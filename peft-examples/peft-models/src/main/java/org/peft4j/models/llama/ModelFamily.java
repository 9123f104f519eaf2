package org.peft4j.models.llama;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.peft4j.core.config.JsonConfigReader;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * The Hugging Face model types that share Llama's decoder and differ from it only by switches,
 * each read from its own {@code config.json} keys:
 *
 * <table>
 *   <caption>What each family changes in the Llama decoder</caption>
 *   <tr><th>{@code model_type}</th><th>architecture</th><th>differs from Llama by</th></tr>
 *   <tr><td>{@code llama}</td><td>{@code LlamaForCausalLM}</td><td>(Llama 1-3.2, TinyLlama,
 *       SmolLM)</td></tr>
 *   <tr><td>{@code mistral}</td><td>{@code MistralForCausalLM}</td><td>{@code sliding_window}:
 *       query {@code i} attends key {@code j} only if {@code i - window < j <= i}</td></tr>
 *   <tr><td>{@code qwen2}</td><td>{@code Qwen2ForCausalLM}</td><td>biases on q/k/v, none on
 *       o</td></tr>
 *   <tr><td>{@code qwen3}</td><td>{@code Qwen3ForCausalLM}</td><td>RMSNorm over each head's q and
 *       k ({@code q_norm}, {@code k_norm}, width {@code head_dim}) before the rotary
 *       embedding</td></tr>
 * </table>
 *
 * <p>A field that would change the math and is not implemented (Qwen's {@code use_sliding_window},
 * a {@code sliding_attention} layer type, SmolLM's {@code rope_interleaved: true}) is refused by
 * name when the config is read.
 */
public enum ModelFamily {

    /** Meta's Llama and the models built on its code. */
    LLAMA("llama", "LlamaForCausalLM"),

    /** Mistral: Llama with sliding-window attention. */
    MISTRAL("mistral", "MistralForCausalLM"),

    /** Qwen2 and Qwen2.5: Llama with biases on the q, k and v projections. */
    QWEN2("qwen2", "Qwen2ForCausalLM"),

    /** Qwen3 (dense): Llama with per-head RMSNorm of queries and keys. */
    QWEN3("qwen3", "Qwen3ForCausalLM");

    private final String modelType;
    private final String architecture;

    ModelFamily(String modelType, String architecture) {
        this.modelType = modelType;
        this.architecture = architecture;
    }

    /**
     * Returns the {@code model_type} of {@code config.json}.
     *
     * @return for example {@code "qwen2"}
     */
    public String getModelType() {
        return modelType;
    }

    /**
     * Returns the Hugging Face class name of the causal LM, as {@code architectures} lists it.
     *
     * @return for example {@code "Qwen2ForCausalLM"}
     */
    public String getArchitecture() {
        return architecture;
    }

    /**
     * Returns whether the q, k and v projections have a bias even without {@code attention_bias}.
     *
     * @return true for Qwen2
     */
    public boolean hasQkvBias() {
        return this == QWEN2;
    }

    /**
     * Returns whether queries and keys are RMS-normalised per head before the rotary embedding.
     *
     * @return true for Qwen3
     */
    public boolean hasQkNorm() {
        return this == QWEN3;
    }

    /**
     * Returns the family of a {@code model_type}.
     *
     * @param modelType the type, as in {@code config.json}
     * @return the family
     * @throws IllegalArgumentException if it is none of the supported ones; the message lists them
     */
    public static ModelFamily of(String modelType) {
        for (ModelFamily family : values()) {
            if (family.modelType.equals(modelType)) {
                return family;
            }
        }
        throw new IllegalArgumentException(
                "model_type "
                        + (modelType == null ? "is missing" : "\"" + modelType + "\"")
                        + " is not supported; supported: "
                        + supported());
    }

    /**
     * Lists the supported model types and their architectures, for messages.
     *
     * @return for example {@code "llama" (LlamaForCausalLM), ...}
     */
    public static String supported() {
        return Arrays.stream(values())
                .map(f -> "\"" + f.modelType + "\" (" + f.architecture + ")")
                .collect(Collectors.joining(", "));
    }

    /**
     * Reads this family's own keys into a builder and refuses those it does not implement.
     *
     * @param r the config's fields
     * @param b the builder
     */
    void readOwnKeys(JsonConfigReader r, LlamaConfig.Builder b) {
        b.family = this;
        switch (this) {
            case LLAMA:
                b.attentionBias = flag(r, "attention_bias");
                b.mlpBias = flag(r, "mlp_bias");
                // SmolLM writes rope_interleaved: false; true would rotate adjacent pairs
                r.refuseIfSet("rope_interleaved", "rotary embeddings over adjacent pairs");
                r.skip("is_llama_config");
                break;
            case MISTRAL:
                Integer window = r.optInt("sliding_window");
                b.slidingWindow = window == null ? 0 : window;
                if (window != null && window <= 0) {
                    throw r.invalid("sliding_window", "must be > 0 or null, got " + window);
                }
                break;
            case QWEN2:
            case QWEN3:
                if (this == QWEN3) {
                    b.attentionBias = flag(r, "attention_bias");
                }
                readQwenWindow(r);
                break;
            default:
                throw new AssertionError(this);
        }
        refuseSlidingLayers(r);
    }

    /**
     * Qwen's window applies to the layers from {@code max_window_layers} on, only with {@code
     * use_sliding_window}; without it both other keys are inert.
     */
    private static void readQwenWindow(JsonConfigReader r) {
        Boolean use = r.optBoolean("use_sliding_window");
        if (use != null && use) {
            throw r.invalid(
                    "use_sliding_window",
                    "is true: Qwen's sliding window over the layers from max_window_layers on is"
                            + " not implemented; set it to false (as the released Qwen2.5 and"
                            + " Qwen3 configs do)");
        }
        r.skip("sliding_window");
        r.skip("max_window_layers");
    }

    private static void refuseSlidingLayers(JsonConfigReader r) {
        JsonNode types = r.optNode("layer_types");
        if (types == null) {
            return;
        }
        for (JsonNode type : types) {
            if (!"full_attention".equals(type.asText())) {
                throw r.invalid(
                        "layer_types",
                        "holds \""
                                + type.asText()
                                + "\"; only \"full_attention\" layers are implemented here");
            }
        }
    }

    private static boolean flag(JsonConfigReader r, String key) {
        Boolean value = r.optBoolean(key);
        return value != null && value;
    }

    /**
     * Writes this family's own keys, as its Hugging Face config class does.
     *
     * @param config the config
     * @param json the {@code config.json} object being written
     */
    void writeOwnKeys(LlamaConfig config, ObjectNode json) {
        switch (this) {
            case LLAMA:
                json.put("attention_bias", config.isAttentionBias());
                json.put("mlp_bias", config.isMlpBias());
                break;
            case MISTRAL:
                if (config.getSlidingWindow() > 0) {
                    json.put("sliding_window", config.getSlidingWindow());
                } else {
                    json.putNull("sliding_window");
                }
                break;
            case QWEN3:
                json.put("attention_bias", config.isAttentionBias());
                json.put("use_sliding_window", false);
                break;
            case QWEN2:
                json.put("use_sliding_window", false);
                break;
            default:
                throw new AssertionError(this);
        }
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
