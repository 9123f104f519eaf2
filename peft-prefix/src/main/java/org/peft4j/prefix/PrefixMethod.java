package org.peft4j.prefix;

import ai.djl.nn.Block;

import org.peft4j.core.PeftConfig;
import org.peft4j.core.PeftMethod;
import org.peft4j.core.PeftModel;
import org.peft4j.core.config.ConfigPair;
import org.peft4j.core.config.JsonConfigReader;
import org.peft4j.core.lm.CausalLanguageModel;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * Registers prefix tuning with peft-core, so that {@code PREFIX_TUNING} adapters load generically.
 */
public final class PrefixMethod implements PeftMethod {

    /** Creates the service; {@link java.util.ServiceLoader} calls this. */
    public PrefixMethod() {}

    /** {@inheritDoc} */
    @Override
    public String getPeftType() {
        return PrefixConfig.PEFT_TYPE;
    }

    /** {@inheritDoc} */
    @Override
    public List<String> getLegacyConfigFiles() {
        return List.of(PrefixConfig.SEED_CONFIG_FILE);
    }

    /** {@inheritDoc} */
    @Override
    public PeftConfig readConfig(JsonConfigReader reader) {
        return PrefixConfig.read(reader);
    }

    /** {@inheritDoc} */
    @Override
    public PeftConfig readConfigs(ConfigPair files) {
        return PrefixConfig.read(files);
    }

    /** {@inheritDoc} */
    @Override
    public PeftModel fromPretrained(Block base, Path dir) throws IOException {
        if (!(base instanceof CausalLanguageModel)) {
            throw new IllegalArgumentException(
                    dir
                            + " holds a prefix adapter, which needs a causal language model"
                            + " (org.peft4j.core.lm.CausalLanguageModel); got a "
                            + base.getClass().getName());
        }
        return PrefixModelForCausalLM.fromPretrained((CausalLanguageModel) base, dir);
    }
}
