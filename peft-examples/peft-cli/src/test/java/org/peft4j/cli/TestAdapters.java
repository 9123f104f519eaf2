package org.peft4j.cli;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import org.peft4j.lora.LoRALinear;
import org.peft4j.lora.LoRAModel;

/** LoRA adapters that change a model, for the command tests, without training them. */
final class TestAdapters {

    private TestAdapters() {}

    /**
     * Adds seeded Gaussian noise to every B matrix (zero when created, so the adapter would change
     * nothing).
     *
     * @param lora the adapted model
     * @param manager the manager of the noise, freed by the caller
     * @param seed the engine's seed
     * @param std the noise's standard deviation
     * @return {@code lora}
     */
    static LoRAModel perturbB(LoRAModel lora, NDManager manager, int seed, float std) {
        Engine.getInstance().setRandomSeed(seed);
        for (LoRALinear layer : lora.getLoRALayers().values()) {
            NDArray b = layer.getLoraB().getArray();
            b.addi(manager.randomNormal(0, std, b.getShape(), DataType.FLOAT32));
        }
        return lora;
    }
}
