package org.peft4j.prefix;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDManager;

import org.junit.jupiter.api.Test;

/** A prefix follows the model's tensor-parallel degree as LoRA does ({@code forModelDegree}). */
class PrefixDegreePolicyTest {

    @Test
    void prefixModelTakesTheDegreeOfASingleProcessModel() {
        try (NDManager manager = NDManager.newBaseManager()) {
            TinyDecoder base = TinyDecoder.create(manager, 1);
            PrefixConfig config =
                    PrefixConfig.builder()
                            .fromModel(base)
                            .setNumPrefixTokens(3)
                            .optTensorParallelDegree(2)
                            .build();
            PrefixModelForCausalLM model = new PrefixModelForCausalLM(base, config);
            assertEquals(1, model.getPeftConfig().getTensorParallelDegree());
            assertEquals(2, config.getTensorParallelDegree(), "the given config is unchanged");
        }
    }
}
