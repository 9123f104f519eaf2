package org.peft4j.core;

import ai.djl.nn.Block;

import org.peft4j.core.config.ConfigPair;
import org.peft4j.core.config.JsonConfigReader;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * A parameter-efficient fine-tuning method, found with {@link java.util.ServiceLoader}: each method
 * module lists its implementation in {@code META-INF/services/org.peft4j.core.PeftMethod}, so that
 * {@link PeftConfig#fromPretrained(Path)} and {@link PeftModel#fromPretrained(Block, Path)} load
 * any adapter whose module is on the class path.
 */
public interface PeftMethod {

    /**
     * Returns the method's {@code peft_type}, as Hugging Face PEFT writes it.
     *
     * @return for example {@code "LORA"} or {@code "PREFIX_TUNING"}
     */
    String getPeftType();

    /**
     * Returns the names of config files that hold this method's config without a {@code peft_type}
     * field, such as PaddleNLP's {@code lora_config.json}.
     *
     * @return file names, looked up after {@code adapter_config.json}
     */
    List<String> getLegacyConfigFiles();

    /**
     * Builds the method's config from a JSON object.
     *
     * @param reader the object's fields
     * @return the config
     * @throws IllegalArgumentException if a field is invalid; the message names the file and field
     */
    PeftConfig readConfig(JsonConfigReader reader);

    /**
     * Builds the method's config from both of its files: {@code adapter_config.json} and the
     * PaddleNLP file of {@link #getLegacyConfigFiles()} beside it. The default reads only the
     * first; methods whose PaddleNLP file holds settings of its own override this and refuse a
     * setting the two files state differently.
     *
     * @param files the two files
     * @return the config
     * @throws IllegalArgumentException if a field is invalid or the files disagree; the message
     *     names the files, the keys and both values
     */
    default PeftConfig readConfigs(ConfigPair files) {
        return readConfig(files.getAdapterConfig());
    }

    /**
     * Wraps a base model with the adapter saved in a directory.
     *
     * @param base the base model, initialised with its weights
     * @param dir a directory written by {@link PeftModel#savePretrained(Path)}
     * @return the adapted model
     * @throws IOException if the adapter cannot be read
     */
    PeftModel fromPretrained(Block base, Path dir) throws IOException;
}
