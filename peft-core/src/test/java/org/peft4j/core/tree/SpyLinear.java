package org.peft4j.core.tree;

import ai.djl.ndarray.NDList;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/** A {@code Linear} that counts its calls and computes what the wrapped layer computes. */
final class SpyLinear extends Linear {

    private final Linear inner;
    int calls;

    SpyLinear(Linear inner, long units) {
        super(Linear.builder().setUnits(units));
        this.inner = inner;
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore parameterStore,
            NDList inputs,
            boolean training,
            PairList<String, Object> params) {
        calls++;
        return inner.forward(parameterStore, inputs, training, params);
    }
}
