package org.peft4j.lora;

/**
 * A {@link ai.djl.nn.core.Linear} layer that builds its own adapted counterpart. The column- and
 * row-parallel layers of peft-parallel are: their adapters must be split across ranks the way their
 * weights are, so {@link LoRALinear.Builder#build()} lets them build the layer.
 */
public interface AdaptableLinear {

    /**
     * Builds the adapted layer with the builder's settings, wrapping this layer.
     *
     * @param builder the settings (rank, scaling, dropout, init, dtype, path) of a builder made
     *     with {@code LoRALinear.builder(this)}
     * @return the adapted layer
     */
    LoRALinear adapt(LoRALinear.Builder builder);
}
