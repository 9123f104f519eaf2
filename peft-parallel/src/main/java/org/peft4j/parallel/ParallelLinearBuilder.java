package org.peft4j.parallel;

import ai.djl.nn.core.Linear;

/**
 * What the builders of the column- and row-parallel layers share: a {@link Linear.Builder} (so that
 * code building Linear layers can build these) plus the tensor-parallel group.
 *
 * @param <T> the concrete builder
 */
public abstract class ParallelLinearBuilder<T extends ParallelLinearBuilder<T>>
        extends Linear.Builder {

    TensorParallel group;
    boolean bias = true;

    ParallelLinearBuilder() {}

    /**
     * Returns this builder as its concrete type.
     *
     * @return this
     */
    protected abstract T self();

    /**
     * Sets the group the layer is split across.
     *
     * @param group the tensor-parallel group
     * @return this builder
     */
    public T setGroup(TensorParallel group) {
        this.group = group;
        return self();
    }

    /**
     * Sets the full layer's output features.
     *
     * @param units {@code O}
     * @return this builder
     */
    @Override
    public T setUnits(long units) {
        super.setUnits(units);
        return self();
    }

    /**
     * Sets whether the layer has a bias.
     *
     * @param bias default true
     * @return this builder
     */
    @Override
    public T optBias(boolean bias) {
        super.optBias(bias);
        this.bias = bias;
        return self();
    }

    long fullUnits() {
        return units;
    }

    void validate() {
        if (group == null) {
            throw new IllegalArgumentException("set the tensor-parallel group");
        }
        if (units <= 0) {
            throw new IllegalArgumentException("units must be > 0, got " + units);
        }
    }
}
