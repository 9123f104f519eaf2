package org.peft4j.lora;

import ai.djl.nn.Block;

import org.peft4j.core.PeftConfig;
import org.peft4j.core.PeftMethod;
import org.peft4j.core.PeftModel;
import org.peft4j.core.config.ConfigPair;
import org.peft4j.core.config.JsonConfigReader;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/** Registers LoRA with peft-core, so that {@code peft_type: "LORA"} adapters load generically. */
public final class LoRAMethod implements PeftMethod {

    /** Creates the service; {@link java.util.ServiceLoader} calls this. */
    public LoRAMethod() {}

    /** {@inheritDoc} */
    @Override
    public String getPeftType() {
        return LoRAConfig.PEFT_TYPE;
    }

    /** {@inheritDoc} */
    @Override
    public List<String> getLegacyConfigFiles() {
        return List.of(LoRAConfig.SEED_CONFIG_FILE);
    }

    /** {@inheritDoc} */
    @Override
    public PeftConfig readConfig(JsonConfigReader reader) {
        return LoRAConfig.read(reader);
    }

    /** {@inheritDoc} */
    @Override
    public PeftConfig readConfigs(ConfigPair files) {
        return LoRAConfig.read(files);
    }

    /** {@inheritDoc} */
    @Override
    public PeftModel fromPretrained(Block base, Path dir) throws IOException {
        return LoRAModel.fromPretrained(base, dir);
    }
}
