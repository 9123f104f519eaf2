package org.peft4j.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import ai.djl.ndarray.NDManager;

import com.fasterxml.jackson.databind.node.ObjectNode;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.peft4j.core.PeftConfig;

/**
 * The one rule for a config whose {@code tensor_parallel_degree} disagrees with the model's: the
 * model's wins, in a copy; the config itself is immutable.
 */
class TensorParallelDegreePolicyTest {

    private NDManager manager;

    @BeforeEach
    void open() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void close() {
        manager.close();
    }

    private static LoRAConfig config(int degree) {
        return LoRAConfig.builder()
                .setTargetModules("0", "2")
                .optR(2)
                .optLoraAlpha(4)
                .optTensorParallelDegree(degree)
                .build();
    }

    @Test
    void anAgreeingConfigIsKeptAsItIs() {
        LoRAConfig config = config(2);
        LoRAConfig used =
                PeftConfig.forModelDegree(
                        config,
                        2,
                        degree -> {
                            throw new AssertionError("copied a config that agrees");
                        });
        assertSame(config, used);
    }

    @Test
    void theModelsDegreeWinsInACopy() {
        LoRAConfig config = config(4);
        LoRAConfig used =
                PeftConfig.forModelDegree(
                        config,
                        2,
                        degree -> config.toBuilder().optTensorParallelDegree(degree).build());
        assertEquals(2, used.getTensorParallelDegree());
        assertEquals(4, config.getTensorParallelDegree(), "the given config is unchanged");
        assertEquals(config.toJson(), used.toJson(), "adapter_config.json has no degree");
        ObjectNode expected = config.toSeedJson().put("tensor_parallel_degree", 2);
        assertEquals(expected, used.toSeedJson(), "every other field is the config's");
    }

    @Test
    void loraModelTakesTheDegreeOfASingleProcessModel() {
        LoRAModel model = new LoRAModel(TestModels.mlp(manager, 1), config(2));
        assertEquals(1, model.getPeftConfig().getTensorParallelDegree());
    }
}
