package org.peft4j.core.config;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.List;
import java.util.Objects;

/**
 * The two config files of one adapter, Hugging Face PEFT's {@code adapter_config.json} and
 * PaddleNLP's {@code lora_config.json} or {@code prefix_config.json}, read side by side.
 *
 * <p>Each tool reads only its own file, so the two must describe the same adapter: a setting that
 * both files state with different values is refused (naming both files, keys and values), never
 * settled silently in favour of one, because the other tool would compute another model.
 */
public final class ConfigPair {

    private final JsonConfigReader adapterConfig;
    private final JsonConfigReader seedConfig;

    private ConfigPair(JsonConfigReader adapterConfig, JsonConfigReader seedConfig) {
        this.adapterConfig = adapterConfig;
        this.seedConfig = seedConfig;
    }

    /**
     * Pairs the two files.
     *
     * @param adapterConfig {@code adapter_config.json}
     * @param seedConfig PaddleNLP's file
     * @return the pair
     */
    public static ConfigPair of(JsonConfigReader adapterConfig, JsonConfigReader seedConfig) {
        return new ConfigPair(
                Objects.requireNonNull(adapterConfig), Objects.requireNonNull(seedConfig));
    }

    /**
     * Returns {@code adapter_config.json}.
     *
     * @return its reader
     */
    public JsonConfigReader getAdapterConfig() {
        return adapterConfig;
    }

    /**
     * Returns PaddleNLP's file.
     *
     * @return its reader
     */
    public JsonConfigReader getSeedConfig() {
        return seedConfig;
    }

    /**
     * Refuses a setting that both files state with values that differ.
     *
     * @param setting what the setting is, for the message (for example {@code "the rank"})
     * @param adapterKeys its names in {@code adapter_config.json}, in order of preference
     * @param seedKeys its names in PaddleNLP's file
     * @param adapterValue the value read from {@code adapter_config.json}, normalised
     * @param seedValue the value read from PaddleNLP's file, normalised the same way
     * @throws IllegalArgumentException if both files state the setting and the values differ
     */
    public void agree(
            String setting,
            List<String> adapterKeys,
            List<String> seedKeys,
            Object adapterValue,
            Object seedValue) {
        String adapterKey = adapterConfig.firstPresent(adapterKeys.toArray(new String[0]));
        String seedKey = seedConfig.firstPresent(seedKeys.toArray(new String[0]));
        if (adapterKey == null || seedKey == null || Objects.equals(adapterValue, seedValue)) {
            return;
        }
        throw disagreement(
                setting,
                quote(adapterKey, adapterConfig.peek(adapterKey)),
                quote(seedKey, seedConfig.peek(seedKey)));
    }

    /**
     * Creates the exception for two files that disagree, for settings compared elsewhere (on the
     * model, say).
     *
     * @param setting what the setting is
     * @param inAdapterConfig what {@code adapter_config.json} says
     * @param inSeedConfig what PaddleNLP's file says
     * @return the exception to throw
     */
    public IllegalArgumentException disagreement(
            String setting, String inAdapterConfig, String inSeedConfig) {
        return new IllegalArgumentException(
                adapterConfig.getSource()
                        + " and "
                        + seedConfig.getSource()
                        + " disagree on "
                        + setting
                        + ": "
                        + inAdapterConfig
                        + " in the first, "
                        + inSeedConfig
                        + " in the second. The two files describe one adapter (Hugging Face PEFT"
                        + " reads the first, PaddleNLP the second, peft4j writes both on every"
                        + " save), so one of them was edited or left from another save: correct"
                        + " the wrong one, or delete it (either file alone loads)");
    }

    private static String quote(String key, JsonNode value) {
        return "\"" + key + "\": " + value;
    }
}
