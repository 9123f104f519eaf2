package org.peft4j.models.llama;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.NormalInitializer;
import ai.djl.util.PairList;

import org.peft4j.core.lm.CausalLanguageModel;
import org.peft4j.core.parallel.ShardGroup;
import org.peft4j.core.tree.ReplaceableBlock;
import org.peft4j.models.llama.weights.LlamaCheckpoints;
import org.peft4j.parallel.BranchTape;
import org.peft4j.parallel.TensorParallel;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * Llama with its language-model head, Hugging Face's {@code LlamaForCausalLM}: children {@code
 * model} ({@link LlamaModel}) and, unless the embeddings are tied, {@code lm_head}.
 *
 * <pre>
 *   logits = norm(decoder(embed(ids))) E^T     (tied: E is model.embed_tokens.weight [V, H])
 *   logits = lm_head(norm(decoder(embed(ids))))  (untied)
 * </pre>
 *
 * <p>With {@code tensor_parallel_degree} T &gt; 1 the layers are split across the ranks of a group
 * (see {@link LlamaAttention}); the output projection is split by vocabulary, and its parts are
 * gathered unless {@code tensor_parallel_output} is set, so that every rank sees the single-process
 * logits. Embeddings and norms are whole on every rank.
 *
 * <p>Input and output follow {@link CausalLanguageModel}: {@code (ids[, positions, mask[,
 * past...]])} in; {@code (logits [B, T, V], key_0, value_0, ..., hidden [B, T, H])} out.
 */
public final class LlamaForCausalLM extends ReplaceableBlock implements CausalLanguageModel {

    /**
     * The names of the Linear projections of every decoder layer. As LoRA targets (each matched as
     * a dotted suffix of a block path) they adapt all seven, as the seed's seven regexes do.
     */
    public static final List<String> PROJECTIONS =
            List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

    private static final byte VERSION = 1;

    private final LlamaConfig config;
    private final Slot<LlamaModel> model;
    private final Slot<Linear> lmHead;
    private final TensorParallel group;

    /**
     * Creates an uninitialised model; {@link #fromPretrained(Path, NDManager)} loads weights and
     * {@link #random(LlamaConfig, NDManager, long)} draws them.
     *
     * @param config the architecture
     * @throws IllegalArgumentException if the config is tensor-parallel (then the group is needed)
     */
    public LlamaForCausalLM(LlamaConfig config) {
        this(config, TensorParallel.single());
    }

    /**
     * Creates an uninitialised model whose layers are split across a tensor-parallel group, as the
     * config's {@code tensor_parallel_degree} and {@code tensor_parallel_rank} say; {@link
     * #fromPretrained(Path, NDManager, TensorParallel, boolean)} loads a full checkpoint into it.
     *
     * @param config the architecture
     * @param group the group; its degree and this process's rank must be the config's
     * @throws IllegalArgumentException if the group disagrees with the config
     */
    public LlamaForCausalLM(LlamaConfig config, TensorParallel group) {
        super(VERSION);
        if (group.getDegree() != config.getTensorParallelDegree()
                || group.getRank() != config.getTensorParallelRank()) {
            throw new IllegalArgumentException(
                    "the config says tensor_parallel_degree "
                            + config.getTensorParallelDegree()
                            + ", rank "
                            + config.getTensorParallelRank()
                            + " but the group is "
                            + group
                            + "; build the config with optTensorParallel(group.getDegree(),"
                            + " group.getRank(), output)");
        }
        this.config = config;
        this.group = group;
        model = addSlot("model", LlamaModel.class, new LlamaModel(config, group));
        lmHead =
                config.isTieWordEmbeddings()
                        ? null
                        : addSlot(
                                "lm_head",
                                Linear.class,
                                new Projections(group)
                                        .column(
                                                config.getVocabSize(),
                                                false,
                                                !config.isTensorParallelOutput()));
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
        return random(config, manager, seed, 0.02);
    }

    /**
     * Creates a model with random weights: {@code N(0, std)} for matrices and embeddings (Hugging
     * Face draws them from {@code N(0, initializer_range)}), ones for norms, zeros for biases.
     *
     * @param config the architecture
     * @param manager the manager that owns the weights
     * @param seed the engine's random seed
     * @param std the standard deviation, &gt; 0
     * @return the initialised model
     * @throws IllegalArgumentException if {@code std} is not positive
     */
    public static LlamaForCausalLM random(
            LlamaConfig config, NDManager manager, long seed, double std) {
        if (!(std > 0)) {
            throw new IllegalArgumentException("the standard deviation must be > 0, got " + std);
        }
        Engine.getInstance().setRandomSeed((int) seed);
        LlamaForCausalLM llama = new LlamaForCausalLM(config);
        llama.setInitializer(new NormalInitializer((float) std), Parameter.Type.WEIGHT);
        llama.initialize(manager, DataType.FLOAT32, new Shape(1, 1));
        return llama;
    }

    /**
     * Loads a checkpoint: a Hugging Face directory ({@code config.json} and {@code
     * model.safetensors} or shards with {@code model.safetensors.index.json}; float32, float16 or
     * bfloat16, all read as float32) or a llama2.c {@code .bin} file (or a directory holding one).
     *
     * @param path the checkpoint directory or file
     * @param manager the manager that owns the weights, which are placed on its device: {@code
     *     NDManager.newBaseManager(Devices.resolve("gpu"))} for the first GPU ({@link
     *     org.peft4j.core.Devices})
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
     * Loads a full checkpoint into a model split across a tensor-parallel group: every rank reads
     * each tensor and keeps its part (one full tensor in memory at a time). A collective in the
     * sense that every rank of the group calls it.
     *
     * @param path the checkpoint directory or file, as {@link #fromPretrained(Path, NDManager)}
     * @param manager the manager that owns this rank's weights, on its device
     * @param group the tensor-parallel group
     * @param tensorParallelOutput whether each rank keeps its part of the logits rather than the
     *     gathered whole
     * @return this rank's model
     * @throws IOException if a file cannot be read, is truncated, or lacks a tensor
     * @throws IllegalArgumentException if the degree does not divide the heads, key/value heads,
     *     intermediate size or vocabulary, or a tensor's shape disagrees with the config
     */
    public static LlamaForCausalLM fromPretrained(
            Path path, NDManager manager, TensorParallel group, boolean tensorParallelOutput)
            throws IOException {
        return LlamaCheckpoints.load(path, manager, group, tensorParallelOutput);
    }

    /**
     * Returns the architecture.
     *
     * @return the config
     */
    public LlamaConfig getConfig() {
        return config;
    }

    /**
     * Returns the tensor-parallel group the layers are split across.
     *
     * @return the group; of degree 1 for a single-process model
     */
    public TensorParallel getTensorParallelGroup() {
        return group;
    }

    /** {@inheritDoc} */
    @Override
    public ShardGroup getShardGroup() {
        return group;
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        if (BranchTape.from(params) != null && config.isTensorParallelOutput()) {
            throw new IllegalStateException(
                    "training needs every rank to see the whole logits; load the model with"
                            + " tensorParallelOutput = false");
        }
        NDList decoded = model.get().forward(ps, inputs, training, params);
        NDArray hidden = decoded.get(0);
        NDArray logits;
        if (lmHead == null) {
            Parameter table = model.get().getEmbedTokens().getWeight();
            NDArray weight = ps.getValue(table, hidden.getDevice(), training);
            if (group.getDegree() > 1) {
                // the rank's rows of the tied table: a view, so that a trained table gets the
                // gradient of its rows
                long part = config.getVocabSize() / group.getDegree();
                long start = part * group.getRank();
                weight = weight.get(new NDIndex("{}:{}", start, start + part));
            }
            logits = Linear.linear(hidden, weight).head();
            if (group.getDegree() > 1 && !config.isTensorParallelOutput()) {
                logits = group.allGather(logits, -1, training);
            }
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
        long vocab = config.getVocabSize();
        if (config.isTensorParallelOutput()) {
            vocab /= config.getTensorParallelDegree();
        }
        return new Shape[] {new Shape(ids.get(0), ids.get(1), vocab)};
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

    /**
     * {@inheritDoc}
     *
     * <p>The config's {@code max_position_embeddings}; a longer input is refused by the forward
     * pass.
     */
    @Override
    public int getMaxPositions() {
        return config.getMaxPositionEmbeddings();
    }
}
