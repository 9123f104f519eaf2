package org.peft4j.examples.llama;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.NormalInitializer;
import ai.djl.util.PairList;

import org.peft4j.core.lm.CausalLanguageModel;
import org.peft4j.core.tree.ReplaceableBlock;
import org.peft4j.examples.llama.weights.LlamaCheckpoints;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Llama with its language-model head, Hugging Face's {@code LlamaForCausalLM}: children {@code
 * model} ({@link LlamaModel}) and, unless the embeddings are tied, {@code lm_head}.
 *
 * <pre>
 *   logits = norm(decoder(embed(ids))) E^T     (tied: E is model.embed_tokens.weight [V, H])
 *   logits = lm_head(norm(decoder(embed(ids))))  (untied)
 * </pre>
 *
 * <p>Input and output follow {@link CausalLanguageModel}: {@code (ids[, positions, mask[,
 * past...]])} in; {@code (logits [B, T, V], key_0, value_0, ..., hidden [B, T, H])} out.
 */
public final class LlamaForCausalLM extends ReplaceableBlock implements CausalLanguageModel {

    private static final byte VERSION = 1;

    private final LlamaConfig config;
    private final Slot<LlamaModel> model;
    private final Slot<Linear> lmHead;

    /**
     * Creates an uninitialised model; {@link #fromPretrained(Path, NDManager)} loads weights and
     * {@link #random(LlamaConfig, NDManager, long)} draws them.
     *
     * @param config the architecture
     */
    public LlamaForCausalLM(LlamaConfig config) {
        super(VERSION);
        this.config = config;
        model = addSlot("model", LlamaModel.class, new LlamaModel(config));
        lmHead =
                config.isTieWordEmbeddings()
                        ? null
                        : addSlot(
                                "lm_head",
                                Linear.class,
                                Linear.builder()
                                        .setUnits(config.getVocabSize())
                                        .optBias(false)
                                        .build());
        // Hugging Face's init: N(0, 0.02) weights; RMSNorm weights start at one.
        setInitializer(new NormalInitializer(0.02f), Parameter.Type.WEIGHT);
    }

    /**
     * Creates a model with random weights: {@code N(0, 0.02)} for matrices, ones for norms.
     *
     * @param config the architecture
     * @param manager the manager that owns the weights
     * @param seed the engine's random seed
     * @return the initialised model
     */
    public static LlamaForCausalLM random(LlamaConfig config, NDManager manager, long seed) {
        Engine.getInstance().setRandomSeed((int) seed);
        LlamaForCausalLM llama = new LlamaForCausalLM(config);
        llama.initialize(manager, DataType.FLOAT32, new Shape(1, 1));
        return llama;
    }

    /**
     * Loads a checkpoint: a Hugging Face directory ({@code config.json} and {@code
     * model.safetensors} or shards with {@code model.safetensors.index.json}; float32, float16 or
     * bfloat16, all read as float32) or a llama2.c {@code .bin} file (or a directory holding one).
     *
     * @param path the checkpoint directory or file
     * @param manager the manager that owns the weights
     * @return the model with the checkpoint's weights
     * @throws IOException if a file cannot be read, is truncated, or lacks a tensor; the message
     *     names the file and tensor
     * @throws IllegalArgumentException if the config is invalid or a tensor's shape disagrees with
     *     it
     */
    public static LlamaForCausalLM fromPretrained(Path path, NDManager manager) throws IOException {
        return LlamaCheckpoints.load(path, manager);
    }

    /**
     * Returns the architecture.
     *
     * @return the config
     */
    public LlamaConfig getConfig() {
        return config;
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDList decoded = model.get().forward(ps, inputs, training, params);
        NDArray hidden = decoded.get(0);
        NDArray logits;
        if (lmHead == null) {
            Parameter table = model.get().getEmbedTokens().getWeight();
            logits = Linear.linear(hidden, ps.getValue(table, hidden.getDevice(), training)).head();
        } else {
            logits = lmHead.get().forward(ps, new NDList(hidden), training).head();
        }
        NDList output = new NDList(decoded.size() + 1);
        output.add(logits);
        output.addAll(decoded.subNDList(1));
        output.add(hidden);
        return output;
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... shapes) {
        Shape ids = shapes[0];
        model.get().initialize(manager, dataType, ids);
        if (lmHead != null) {
            lmHead.get()
                    .initialize(
                            manager,
                            dataType,
                            new Shape(ids.get(0), ids.get(1), config.getHiddenSize()));
        }
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        Shape ids = inputShapes[0];
        return new Shape[] {new Shape(ids.get(0), ids.get(1), config.getVocabSize())};
    }

    /** {@inheritDoc} */
    @Override
    public int getNumHiddenLayers() {
        return config.getNumHiddenLayers();
    }

    /** {@inheritDoc} */
    @Override
    public int getNumAttentionHeads() {
        return config.getNumAttentionHeads();
    }

    /** {@inheritDoc} */
    @Override
    public int getNumKeyValueHeads() {
        return config.getNumKeyValueHeads();
    }

    /** {@inheritDoc} */
    @Override
    public int getHeadDim() {
        return config.getHeadDim();
    }

    /** {@inheritDoc} */
    @Override
    public int getHiddenSize() {
        return config.getHiddenSize();
    }

    /** {@inheritDoc} */
    @Override
    public int getVocabSize() {
        return config.getVocabSize();
    }
}
