package org.peft4j.lora;

/**
 * Which biases train alongside the LoRA matrices: the seed's {@code trainable_bias}, Hugging Face's
 * {@code bias}.
 */
public enum TrainableBias {
    /** No bias trains ({@code "none"}). */
    NONE("none"),
    /** The biases of the adapted layers train ({@code "lora_only"}; the seed writes "lora"). */
    LORA("lora_only"),
    /** Every bias of the model trains ({@code "all"}). */
    ALL("all");

    private final String hfName;

    TrainableBias(String hfName) {
        this.hfName = hfName;
    }

    /**
     * Returns the value of Hugging Face's {@code bias} field.
     *
     * @return {@code "none"}, {@code "lora_only"} or {@code "all"}
     */
    public String hfName() {
        return hfName;
    }

    /**
     * Parses Hugging Face's {@code bias} or the seed's {@code trainable_bias} value.
     *
     * @param name {@code "none"}, {@code "lora_only"}, {@code "lora"} or {@code "all"}
     * @return the setting, or {@code null} for an unknown name
     */
    public static TrainableBias parse(String name) {
        switch (name) {
            case "none":
                return NONE;
            case "lora_only":
            case "lora":
                return LORA;
            case "all":
                return ALL;
            default:
                return null;
        }
    }
}
