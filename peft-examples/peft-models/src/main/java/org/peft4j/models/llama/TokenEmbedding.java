package org.peft4j.models.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/**
 * A lookup table from token ids to vectors: {@code ids [B, T]} to {@code weight[ids] [B, T, H]}
 * with {@code weight: [V, H]}. The same weight is the output projection of a model with tied
 * embeddings.
 */
public final class TokenEmbedding extends AbstractBlock {

    private static final byte VERSION = 1;

    private final Parameter weight;
    private final long vocab;
    private final long hidden;

    /**
     * Creates the table.
     *
     * @param vocab the number of tokens {@code V}
     * @param hidden the vector width {@code H}
     */
    public TokenEmbedding(long vocab, long hidden) {
        super(VERSION);
        this.vocab = vocab;
        this.hidden = hidden;
        this.weight =
                addParameter(
                        Parameter.builder()
                                .setName("weight")
                                .setType(Parameter.Type.WEIGHT)
                                .optShape(new Shape(vocab, hidden))
                                .build());
    }

    /**
     * Returns the table {@code [V, H]}.
     *
     * @return the weight parameter
     */
    public Parameter getWeight() {
        return weight;
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore parameterStore,
            NDList inputs,
            boolean training,
            PairList<String, Object> params) {
        NDArray ids = inputs.head();
        NDArray table = parameterStore.getValue(weight, ids.getDevice(), training);
        return ids.getNDArrayInternal().embedding(ids, table, SparseFormat.DENSE);
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0].add(hidden)};
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "TokenEmbedding(" + vocab + ", " + hidden + ')';
    }
}
