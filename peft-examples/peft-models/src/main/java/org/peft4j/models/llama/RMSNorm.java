package org.peft4j.models.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import org.peft4j.core.Scalars;

/**
 * Root-mean-square normalisation (Zhang and Sennrich, 2019) over the last axis:
 *
 * <pre>
 *   y = x / sqrt(mean(x^2) + eps) * weight       x: [..., H]   weight: [H]
 * </pre>
 *
 * computed in float32 whatever the input type, as Hugging Face's {@code LlamaRMSNorm} does.
 */
public final class RMSNorm extends AbstractBlock {

    private static final byte VERSION = 1;
    private static final int[] LAST_AXIS = {-1};

    private final Parameter weight;
    private final long size;
    private final float eps;
    private NDArray epsilon;

    /**
     * Creates the norm.
     *
     * @param size the normalised width {@code H}
     * @param eps the epsilon added to the mean square
     */
    public RMSNorm(long size, double eps) {
        super(VERSION);
        this.size = size;
        this.eps = (float) eps;
        this.weight =
                addParameter(
                        Parameter.builder()
                                .setName("weight")
                                .setType(Parameter.Type.GAMMA)
                                .optShape(new Shape(size))
                                .build());
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore parameterStore,
            NDList inputs,
            boolean training,
            PairList<String, Object> params) {
        NDArray x = inputs.head();
        NDArray w = parameterStore.getValue(weight, x.getDevice(), training);
        return new NDList(normalize(x, w, epsilon(w)));
    }

    /** Epsilon as an engine-owned constant, made once: one operation fewer per call. */
    private synchronized NDArray epsilon(NDArray w) {
        if (epsilon == null) {
            epsilon = Scalars.of(w, eps);
            NDScope.unregister(epsilon);
        }
        return epsilon;
    }

    /**
     * Applies the norm.
     *
     * @param x the input {@code [..., H]}
     * @param w the weight {@code [H]}
     * @param eps the epsilon
     * @return {@code x / sqrt(mean(x^2) + eps) * w}, attached to {@code x}'s manager
     */
    public static NDArray normalize(NDArray x, NDArray w, float eps) {
        try (NDArray epsilon = Scalars.of(w, eps)) {
            return normalize(x, w, epsilon);
        }
    }

    private static NDArray normalize(NDArray x, NDArray w, NDArray epsilon) {
        DataType type = x.getDataType();
        NDArray x32 = type == DataType.FLOAT32 ? x : x.toType(DataType.FLOAT32, false);
        NDArray rms = x32.square().mean(LAST_AXIS, true).add(epsilon).sqrt();
        NDArray y = x32.div(rms);
        if (type != DataType.FLOAT32) {
            y = y.toType(type, false);
        }
        return y.mul(w);
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "RMSNorm(" + size + ", eps=" + eps + ')';
    }
}
