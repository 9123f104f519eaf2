package org.peft4j.prefix;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.Dropout;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.Initializer;
import ai.djl.training.initializer.NormalInitializer;
import ai.djl.util.PairList;

import org.peft4j.core.parallel.ShardGroup;
import org.peft4j.core.parallel.ShardedBlock;
import org.peft4j.core.parallel.Sharding;

/**
 * Produces the prefix: {@code [P, 2 * L * kvHeads * headDim]}, a key and a value per layer for each
 * of the {@code P} prefix tokens.
 *
 * <pre>
 *   without projection:  prefix = E                          E: [P, 2 L kvHeads d]
 *   with projection:     prefix = tanh(E W1^T + b1) W2^T + b2   E: [P, hidden],
 *                        W1: [inner, hidden], W2: [2 L kvHeads d, inner]
 *   then dropout (training only)
 * </pre>
 *
 * <p>Children: {@code embedding} (parameter {@code weight}) and, with a projection, {@code
 * transform} ({@code 0}: Linear, {@code 1}: Tanh, {@code 2}: Linear), Hugging Face's names.
 *
 * <p>Input: any array on the device and manager the output should use (the input ids). Output: the
 * prefix, attached to that array's manager.
 */
public final class PrefixEncoder extends AbstractBlock implements ShardedBlock {

    private static final byte VERSION = 1;

    private final PrefixTable embedding;
    private final SequentialBlock transform;
    private final int tokens;
    private final int width;
    private final float dropout;
    private final ShardGroup group;
    private final Sharding heads;
    private final Sharding outputHeads;

    /**
     * Creates the encoder of a config for a model on one process.
     *
     * @param config the prefix config
     */
    public PrefixEncoder(PrefixConfig config) {
        this(config, ShardGroup.single());
    }

    /**
     * Creates the encoder of a config for a model split across ranks: each rank produces the prefix
     * of its own {@code kvHeads / T} key/value heads, {@code [P, 2 L (kvHeads / T) d]}. The table
     * (without projection) and the projection's second layer are split by heads; the projection's
     * first layer, and its table, are whole on every rank.
     *
     * @param config the prefix config
     * @param group the ranks the model is split across
     */
    public PrefixEncoder(PrefixConfig config, ShardGroup group) {
        super(VERSION);
        this.group = group;
        tokens = config.getNumPrefixTokens();
        width = config.getPrefixWidth() / group.getDegree();
        long blocks = 2L * config.getNumHiddenLayers();
        boolean split = group.getDegree() > 1;
        heads =
                split
                        ? new HeadSharding(
                                group,
                                config.isPrefixProjection() ? 0 : 1,
                                blocks,
                                config.getHeadDim())
                        : null;
        outputHeads = split ? new HeadSharding(group, 1, blocks, config.getHeadDim()) : null;
        dropout = (float) config.getPrefixDropout();
        boolean projection = config.isPrefixProjection();
        long embeddingWidth = projection ? config.getHiddenSize() : width;
        // Split parts are drawn whole and cut (Sharding.drawWholeKeepPart): with the same seed a
        // split encoder starts from the single-process one.
        Initializer table = new NormalInitializer(1f);
        embedding =
                addChildBlock(
                        "embedding",
                        new PrefixTable(
                                tokens,
                                embeddingWidth,
                                split && !projection ? heads.drawWholeKeepPart(table) : table));
        if (projection) {
            Linear out = Linear.builder().setUnits(width).build();
            if (split) {
                out.getParameters()
                        .get("weight")
                        .setInitializer(
                                heads.drawWholeKeepPart(Parameter.Type.WEIGHT.getInitializer()));
            }
            transform =
                    addChildBlock(
                            "transform",
                            new SequentialBlock()
                                    .add(
                                            Linear.builder()
                                                    .setUnits(
                                                            config.getPrefixProjectionHiddenSize())
                                                    .build())
                                    .add(Activation.tanhBlock())
                                    .add(out));
        } else {
            transform = null;
        }
    }

    /**
     * Returns the embedding table, {@code [P, hidden]} with a projection, else {@code [P, 2 L
     * kvHeads d]}.
     *
     * @return the table's parameter
     */
    public Parameter getEmbedding() {
        return embedding.weight;
    }

    /**
     * Returns whether the encoder has a projection.
     *
     * @return true with Linear-Tanh-Linear
     */
    public boolean hasProjection() {
        return transform != null;
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray anchor = inputs.head();
        // Looking up 0..P-1 keeps every result on the caller's manager, not the weight's.
        NDArray ids = anchor.getManager().arange(0, tokens, 1, DataType.INT64);
        NDArray prefix = embedding.forward(ps, new NDList(ids), training).head();
        if (transform != null) {
            prefix = transform.forward(ps, new NDList(prefix), training).head();
        }
        if (dropout > 0) {
            prefix = Dropout.dropout(prefix, dropout, training).head();
        }
        return new NDList(prefix);
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... shapes) {
        embedding.initialize(manager, dataType, new Shape(tokens));
        if (transform != null) {
            transform.initialize(manager, dataType, embedding.weight.getShape());
        }
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {new Shape(tokens, width)};
    }

    /** {@inheritDoc} */
    @Override
    public ShardGroup getShardGroup() {
        return group;
    }

    /**
     * {@inheritDoc}
     *
     * <p>Answers for the parameters of the encoder's children: the table without a projection, the
     * projection's last layer with one.
     */
    @Override
    public Sharding getSharding(Parameter parameter) {
        if (heads == null) {
            return null;
        }
        if (transform == null) {
            return parameter == embedding.weight ? heads : null;
        }
        Block last = transform.getChildren().get(2).getValue();
        return last.getParameters().values().contains(parameter) ? heads : null;
    }

    /**
     * Returns the sharding of the encoder's output, {@code [P, 2 L kvHeads d]} split by heads.
     *
     * @return the sharding, or null on one process
     */
    Sharding outputSharding() {
        return outputHeads;
    }

    /** The table of prefix vectors, {@code N(0, 1)} at start as Hugging Face's embedding. */
    static final class PrefixTable extends AbstractBlock {

        final Parameter weight;

        PrefixTable(long tokens, long width, Initializer initializer) {
            super(VERSION);
            weight =
                    addParameter(
                            Parameter.builder()
                                    .setName("weight")
                                    .setType(Parameter.Type.WEIGHT)
                                    .optShape(new Shape(tokens, width))
                                    .optInitializer(initializer)
                                    .build());
        }

        @Override
        protected NDList forwardInternal(
                ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> p) {
            NDArray ids = inputs.head();
            NDArray table = ps.getValue(weight, ids.getDevice(), training);
            return ids.getNDArrayInternal().embedding(ids, table, SparseFormat.DENSE);
        }

        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return new Shape[] {inputShapes[0].add(weight.getShape().get(1))};
        }
    }
}
