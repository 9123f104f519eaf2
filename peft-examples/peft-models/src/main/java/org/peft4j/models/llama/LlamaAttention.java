package org.peft4j.models.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import org.peft4j.core.tree.ReplaceableBlock;
import org.peft4j.parallel.TensorParallel;

/**
 * Grouped-query self-attention with rotary embeddings and a key/value cache.
 *
 * <pre>
 *   q = rope(x Wq^T + bq)                        [B, heads,   T, d]
 *   k = rope(x Wk^T + bk), v = x Wv^T + bv       [B, kvHeads, T, d]
 *   k, v = concat(past, k or v) along T          (the cache: [B, kvHeads, P+T, d])
 *   out = softmax(q k^T / sqrt(d) + mask) v      (query head h reads kv head h / (heads / kvHeads))
 *   y = out Wo^T + bo
 * </pre>
 *
 * <p>The biases are there as the config says ({@link LlamaConfig#isQkvBias()} for q/k/v, {@code
 * attention_bias} for o: Qwen2 has the first and not the second). In Qwen3 ({@link
 * LlamaConfig#isQkNorm()}) each head's query and key pass an RMSNorm over {@code d} before the
 * rotary embedding: {@code q = rope(q_norm(x Wq^T))}, {@code k = rope(k_norm(x Wk^T))}, one weight
 * {@code [d]} shared by the heads.
 *
 * <p>Inputs: {@code x [B, T, H]}, {@code cos, sin [B, 1, T, d]}, the additive mask {@code [B, 1, T,
 * P+T]}, then optionally the cached key and value. Outputs: {@code y [B, T, H]}, the new key and
 * value cache. Children: {@code q_proj}, {@code k_proj}, {@code v_proj}, {@code o_proj}, and
 * {@code q_norm}, {@code k_norm} in Qwen3.
 *
 * <p>Split across a tensor-parallel group, a rank computes its heads and its part of {@code
 * o_proj}'s product; the row-parallel {@code o_proj} sums the parts, and the cache holds the rank's
 * key/value heads only. The q/k/v biases are split with their rows; {@code o_proj}'s bias and the
 * per-head norms are whole on every rank.
 */
public final class LlamaAttention extends ReplaceableBlock {

    private static final byte VERSION = 1;

    private final Slot<Linear> qProj;
    private final Slot<Linear> kProj;
    private final Slot<Linear> vProj;
    private final Slot<Linear> oProj;
    private final Slot<RMSNorm> qNorm;
    private final Slot<RMSNorm> kNorm;
    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final int hidden;
    private final RotaryEmbedding rotary;

    /**
     * Creates the attention block of a config; in a tensor-parallel group each rank holds {@code
     * heads / T} query heads and {@code kvHeads / T} key/value heads.
     *
     * @param config the model's config
     * @param rotary the model's rotary embedding
     * @param group the tensor-parallel group
     */
    public LlamaAttention(LlamaConfig config, RotaryEmbedding rotary, TensorParallel group) {
        super(VERSION);
        this.rotary = rotary;
        Projections projections = new Projections(group);
        headDim = config.getHeadDim();
        hidden = config.getHiddenSize();
        heads = projections.local(config.getNumAttentionHeads());
        kvHeads = projections.local(config.getNumKeyValueHeads());
        long queries = (long) config.getNumAttentionHeads() * headDim;
        long keys = (long) config.getNumKeyValueHeads() * headDim;
        boolean bias = config.isQkvBias();
        qProj = addSlot("q_proj", Linear.class, projections.column(queries, bias, false));
        kProj = addSlot("k_proj", Linear.class, projections.column(keys, bias, false));
        vProj = addSlot("v_proj", Linear.class, projections.column(keys, bias, false));
        oProj = addSlot("o_proj", Linear.class, projections.row(hidden, config.isAttentionBias()));
        if (config.isQkNorm()) {
            qNorm = addSlot("q_norm", RMSNorm.class, new RMSNorm(headDim, config.getRmsNormEps()));
            kNorm = addSlot("k_norm", RMSNorm.class, new RMSNorm(headDim, config.getRmsNormEps()));
        } else {
            qNorm = null;
            kNorm = null;
        }
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray x = inputs.get(0);
        NDArray cos = inputs.get(1);
        NDArray sin = inputs.get(2);
        NDArray scaledCos = inputs.get(3);
        NDArray scaledSin = inputs.get(4);
        NDArray mask = inputs.get(5);
        long batch = x.getShape().get(0);
        long length = x.getShape().get(1);
        NDArray q = project(ps, qProj.get(), x, heads, training);
        NDArray k = project(ps, kProj.get(), x, kvHeads, training);
        NDArray v = project(ps, vProj.get(), x, kvHeads, training);
        if (qNorm != null) {
            q = qNorm.get().forward(ps, new NDList(q), training).head();
            k = kNorm.get().forward(ps, new NDList(k), training).head();
        }
        q = rotary.apply(q, scaledCos, scaledSin); // rotated and scaled by 1 / sqrt(d)
        k = rotary.apply(k, cos, sin);
        if (inputs.size() > 6) {
            k = inputs.get(6).concat(k, 2);
            v = inputs.get(7).concat(v, 2);
        }
        long total = k.getShape().get(2);
        long group = heads / kvHeads;
        // Query heads of one kv head side by side: [B, kvHeads, group * T, d]; no k/v copies.
        NDArray scores =
                q.reshape(batch, kvHeads, group * length, headDim)
                        .matMul(k.transpose(0, 1, 3, 2))
                        .reshape(batch, heads, length, total);
        if (mask != null) {
            scores = scores.add(mask);
        }
        NDArray probs = scores.softmax(-1).reshape(batch, kvHeads, group * length, total);
        NDArray context =
                probs.matMul(v)
                        .reshape(batch, heads, length, headDim)
                        .transpose(0, 2, 1, 3)
                        .reshape(batch, length, (long) heads * headDim);
        NDArray y = oProj.get().forward(ps, new NDList(context), training).head();
        return new NDList(y, k, v);
    }

    private NDArray project(
            ParameterStore ps, Linear layer, NDArray x, int count, boolean training) {
        Shape shape = x.getShape();
        return layer.forward(ps, new NDList(x), training)
                .head()
                .reshape(shape.get(0), shape.get(1), count, headDim)
                .transpose(0, 2, 1, 3);
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... shapes) {
        Shape x = shapes[0];
        qProj.get().initialize(manager, dataType, x);
        kProj.get().initialize(manager, dataType, x);
        vProj.get().initialize(manager, dataType, x);
        oProj.get().initialize(manager, dataType, new Shape(x.get(0), x.get(1), heads * headDim));
        if (qNorm != null) {
            Shape head = new Shape(x.get(0), heads, x.get(1), headDim);
            qNorm.get().initialize(manager, dataType, head);
            kNorm.get().initialize(manager, dataType, head);
        }
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }
}
