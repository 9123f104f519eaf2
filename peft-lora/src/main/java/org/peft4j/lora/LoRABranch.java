package org.peft4j.lora;

import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Parameter;

import java.util.List;

/**
 * One named adapter's low-rank branch on one {@link LoRALinear}: {@code s (dropout(x) A^T) B^T}
 * with {@code A: [r, in]} and {@code B: [out, r]}. A layer holds one branch per adapter that
 * targets it; the branches of the active adapters add.
 *
 * <p>The settings are fixed; the two parameters' arrays are what training, loading and hot swap
 * change.
 */
public final class LoRABranch {

    private final String name;
    private final Parameter loraA;
    private final Parameter loraB;
    private final int r;
    private final double scaling;
    private final float dropout;
    private final DataType dtype;

    LoRABranch(
            String name,
            Parameter loraA,
            Parameter loraB,
            int r,
            double scaling,
            float dropout,
            DataType dtype) {
        this.name = name;
        this.loraA = loraA;
        this.loraB = loraB;
        this.r = r;
        this.scaling = scaling;
        this.dropout = dropout;
        this.dtype = dtype;
    }

    /** Returns this branch with another factor {@code s}, the same parameters (a hot swap). */
    LoRABranch withScaling(double newScaling) {
        return new LoRABranch(name, loraA, loraB, r, newScaling, dropout, dtype);
    }

    /**
     * Returns the name of the adapter the branch belongs to.
     *
     * @return the adapter name, {@code default} for the first
     */
    public String getName() {
        return name;
    }

    /**
     * Returns {@code A: [r, in]}.
     *
     * @return the down-projection parameter
     */
    public Parameter getLoraA() {
        return loraA;
    }

    /**
     * Returns {@code B: [out, r]}.
     *
     * @return the up-projection parameter
     */
    public Parameter getLoraB() {
        return loraB;
    }

    /**
     * Returns the branch's two parameters.
     *
     * @return {@code [A, B]}
     */
    public List<Parameter> parameters() {
        return List.of(loraA, loraB);
    }

    /**
     * Returns the rank.
     *
     * @return {@code r}
     */
    public int getR() {
        return r;
    }

    /**
     * Returns the factor {@code s} of the branch.
     *
     * @return {@code alpha / r}, or {@code alpha / sqrt(r)} with rsLoRA
     */
    public double getScaling() {
        return scaling;
    }

    /**
     * Returns the dropout rate on the branch's input during training.
     *
     * @return a rate in [0, 1)
     */
    public float getDropout() {
        return dropout;
    }

    /**
     * Returns the type of {@code A} and {@code B}.
     *
     * @return float32 or float16
     */
    public DataType getDtype() {
        return dtype;
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return name + "(r=" + r + ", scaling=" + scaling + ')';
    }
}
