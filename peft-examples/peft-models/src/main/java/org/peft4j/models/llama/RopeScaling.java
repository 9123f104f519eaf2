package org.peft4j.models.llama;

import com.fasterxml.jackson.databind.JsonNode;

import org.peft4j.core.config.JsonConfigReader;

/**
 * Rotary scaling of the inverse frequencies: {@code "linear"} divides them all by {@code factor};
 * {@code "llama3"} (Llama 3.1) divides only the low frequencies, leaves the high ones and blends in
 * between, by wavelength relative to the original context length.
 *
 * @param type {@code "linear"} or {@code "llama3"}
 * @param factor the scale factor, &gt; 0
 * @param lowFreqFactor llama3's {@code low_freq_factor}
 * @param highFreqFactor llama3's {@code high_freq_factor}
 * @param originalMaxPositions llama3's {@code original_max_position_embeddings}
 */
public record RopeScaling(
        String type,
        double factor,
        double lowFreqFactor,
        double highFreqFactor,
        int originalMaxPositions) {

    /**
     * Validates the fields.
     *
     * @param type {@code "linear"} or {@code "llama3"}
     * @param factor the scale factor, &gt; 0
     * @param lowFreqFactor llama3's {@code low_freq_factor}
     * @param highFreqFactor llama3's {@code high_freq_factor}
     * @param originalMaxPositions llama3's {@code original_max_position_embeddings}
     * @throws IllegalArgumentException if the type is unknown or a value out of range
     */
    public RopeScaling {
        if (!"linear".equals(type) && !"llama3".equals(type)) {
            throw new IllegalArgumentException(
                    "rope_scaling type \""
                            + type
                            + "\" is not implemented; peft4j has linear and"
                            + " llama3");
        }
        if (!(factor > 0)) {
            throw new IllegalArgumentException("rope_scaling factor must be > 0, got " + factor);
        }
        if ("llama3".equals(type) && !(highFreqFactor > lowFreqFactor && lowFreqFactor > 0)) {
            throw new IllegalArgumentException(
                    "rope_scaling needs high_freq_factor > low_freq_factor > 0, got "
                            + highFreqFactor
                            + " and "
                            + lowFreqFactor);
        }
    }

    /**
     * Scales inverse frequencies {@code 1 / theta^(2i/d)}.
     *
     * @param invFreq the unscaled inverse frequencies; changed in place
     */
    public void apply(double[] invFreq) {
        for (int i = 0; i < invFreq.length; i++) {
            if ("linear".equals(type)) {
                invFreq[i] /= factor;
                continue;
            }
            double wavelength = 2 * Math.PI / invFreq[i];
            double lowFreqWavelength = originalMaxPositions / lowFreqFactor;
            double highFreqWavelength = originalMaxPositions / highFreqFactor;
            if (wavelength > lowFreqWavelength) {
                invFreq[i] /= factor;
            } else if (wavelength >= highFreqWavelength) {
                double smooth =
                        (originalMaxPositions / wavelength - lowFreqFactor)
                                / (highFreqFactor - lowFreqFactor);
                invFreq[i] = (1 - smooth) * invFreq[i] / factor + smooth * invFreq[i];
            }
        }
    }

    static RopeScaling read(JsonConfigReader r, JsonNode node) {
        if (!node.isObject()) {
            throw r.invalid("rope_scaling", "must be an object, found " + node);
        }
        JsonNode type = node.has("rope_type") ? node.get("rope_type") : node.get("type");
        String name = type == null ? null : type.asText();
        if ("default".equals(name)) {
            return null;
        }
        try {
            return new RopeScaling(
                    name,
                    node.path("factor").asDouble(Double.NaN),
                    node.path("low_freq_factor").asDouble(1),
                    node.path("high_freq_factor").asDouble(4),
                    node.path("original_max_position_embeddings").asInt(8192));
        } catch (IllegalArgumentException e) {
            throw r.invalid("rope_scaling", "is not supported: " + e.getMessage());
        }
    }
}
