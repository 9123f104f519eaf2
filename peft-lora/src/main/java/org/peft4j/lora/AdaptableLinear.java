package org.peft4j.lora;

/**
 * A {@link ai.djl.nn.core.Linear} layer that builds its own adapted counterpart. The column- and
 * row-parallel layers of peft-parallel are: their adapters must be split across ranks the way their
 * weights are, so {@link LoRALinear.Builder#build()} lets them build the layer.
 */
public interface AdaptableLinear {

    /**
     * Builds the adapted layer with the builder's settings, wrapping this layer, and returns it
     * ready as {@link LoRALinear.Builder#build()} returns a plain one: with {@code A} and {@code B}
     * created when this layer's weight is set ({@link LoRALinear#initializeAdapterFromBase()}), and
     * whatever the ranks must agree on agreed (a replicated matrix broadcast). That work belongs
     * here, after the adapted layer's constructor has returned, not in the constructor: a
     * constructor that calls overridable methods runs them before the subclass's fields exist, and
     * one that communicates turns every {@code new} into a collective.
     *
     * @param builder the settings (rank, scaling, dropout, init, dtype, path) of a builder made
     *     with {@code LoRALinear.builder(this)}
     * @return the adapted layer
     */
    LoRALinear adapt(LoRALinear.Builder builder);
}
