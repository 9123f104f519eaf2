package org.peft4j.prefix;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.NormalInitializer;
import ai.djl.util.PairList;

import org.peft4j.core.Scalars;
import org.peft4j.core.lm.CausalLanguageModel;

import java.util.ArrayList;
import java.util.List;

/**
 * A small decoder for prefix tests, following the causal-LM contract: learned absolute positions
 * (so that shifted positions change the output), grouped-query attention with a cache, 2-D padding
 * or 4-D additive masks.
 */
final class TinyDecoder extends AbstractBlock implements CausalLanguageModel {

    static final int VOCAB = 23;
    static final int HIDDEN = 16;
    static final int HEADS = 4;
    static final int KV_HEADS = 2;
    static final int HEAD_DIM = HIDDEN / HEADS;
    static final int MAX_POSITIONS = 128;

    private final Parameter embedding;
    private final Parameter positions;
    private final Parameter output;
    private final List<Parameter[]> layers = new ArrayList<>();
    private final int layerCount;

    TinyDecoder(int layerCount) {
        super((byte) 1);
        this.layerCount = layerCount;
        embedding = add("embed", VOCAB, HIDDEN);
        positions = add("positions", MAX_POSITIONS, HIDDEN);
        for (int l = 0; l < layerCount; l++) {
            layers.add(
                    new Parameter[] {
                        add("q" + l, HEADS * HEAD_DIM, HIDDEN),
                        add("k" + l, KV_HEADS * HEAD_DIM, HIDDEN),
                        add("v" + l, KV_HEADS * HEAD_DIM, HIDDEN),
                        add("o" + l, HIDDEN, HEADS * HEAD_DIM)
                    });
        }
        output = add("out", VOCAB, HIDDEN);
    }

    static TinyDecoder create(NDManager manager, int seed) {
        return create(manager, seed, 2);
    }

    static TinyDecoder create(NDManager manager, int seed, int layers) {
        Engine.getInstance().setRandomSeed(seed);
        TinyDecoder decoder = new TinyDecoder(layers);
        decoder.initialize(manager, DataType.FLOAT32, new Shape(1, 1));
        return decoder;
    }

    private Parameter add(String name, long rows, long cols) {
        return addParameter(
                Parameter.builder()
                        .setName(name)
                        .setType(Parameter.Type.WEIGHT)
                        .optShape(new Shape(rows, cols))
                        .optInitializer(new NormalInitializer(0.3f))
                        .build());
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray ids = inputs.get(0);
        NDManager manager = ids.getManager();
        long batch = ids.getShape().get(0);
        long length = ids.getShape().get(1);
        long past = inputs.size() > 3 ? inputs.get(3).getShape().get(2) : 0;
        NDArray pos =
                inputs.size() > 1
                        ? inputs.get(1)
                        : manager.arange(past, past + length, 1, DataType.INT64)
                                .reshape(1, length)
                                .repeat(0, batch);
        NDArray x = lookup(ps, embedding, ids, training).add(lookup(ps, positions, pos, training));
        NDArray mask =
                additiveMask(
                        inputs.size() > 2 ? inputs.get(2) : null, batch, length, past, manager);
        NDList out = new NDList();
        out.add(null);
        for (int l = 0; l < layerCount; l++) {
            Parameter[] w = layers.get(l);
            NDArray q = heads(linear(ps, x, w[0], training), HEADS);
            NDArray k = heads(linear(ps, x, w[1], training), KV_HEADS);
            NDArray v = heads(linear(ps, x, w[2], training), KV_HEADS);
            if (past > 0) {
                k = inputs.get(3 + 2 * l).concat(k, 2);
                v = inputs.get(4 + 2 * l).concat(v, 2);
            }
            out.add(k);
            out.add(v);
            NDArray kr = k.repeat(1, HEADS / KV_HEADS);
            NDArray vr = v.repeat(1, HEADS / KV_HEADS);
            NDArray scores =
                    Scalars.div(q.matMul(kr.transpose(0, 1, 3, 2)), Math.sqrt(HEAD_DIM)).add(mask);
            NDArray context =
                    scores.softmax(-1)
                            .matMul(vr)
                            .transpose(0, 2, 1, 3)
                            .reshape(batch, length, HEADS * HEAD_DIM);
            x = x.add(linear(ps, context, w[3], training));
        }
        out.set(0, linear(ps, x, output, training));
        out.add(x);
        return out;
    }

    private static NDArray additiveMask(
            NDArray mask, long batch, long length, long past, NDManager manager) {
        if (mask != null && mask.getShape().dimension() == 4) {
            return mask;
        }
        long total = past + length;
        float[] values = new float[(int) (batch * length * total)];
        long[] keep = mask == null ? null : mask.toLongArray();
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < length; i++) {
                for (int j = 0; j < total; j++) {
                    boolean allowed =
                            j <= past + i && (keep == null || keep[(int) (b * total + j)] != 0);
                    values[(int) ((b * length + i) * total + j)] = allowed ? 0 : -1e9f;
                }
            }
        }
        return manager.create(values, new Shape(batch, 1, length, total));
    }

    private static NDArray lookup(
            ParameterStore ps, Parameter table, NDArray ids, boolean training) {
        NDArray weight = ps.getValue(table, ids.getDevice(), training);
        return ids.getNDArrayInternal().embedding(ids, weight, SparseFormat.DENSE).head();
    }

    private static NDArray linear(ParameterStore ps, NDArray x, Parameter w, boolean training) {
        return x.getNDArrayInternal()
                .linear(x, ps.getValue(w, x.getDevice(), training), null)
                .head();
    }

    private static NDArray heads(NDArray x, int count) {
        Shape shape = x.getShape();
        return x.reshape(shape.get(0), shape.get(1), count, HEAD_DIM).transpose(0, 2, 1, 3);
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0].add(VOCAB)};
    }

    @Override
    public int getNumHiddenLayers() {
        return layerCount;
    }

    @Override
    public int getNumAttentionHeads() {
        return HEADS;
    }

    @Override
    public int getNumKeyValueHeads() {
        return KV_HEADS;
    }

    @Override
    public int getHeadDim() {
        return HEAD_DIM;
    }

    @Override
    public int getHiddenSize() {
        return HIDDEN;
    }

    @Override
    public int getVocabSize() {
        return VOCAB;
    }
}
