package org.peft4j.prefix;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import org.peft4j.core.AdapterScope;
import org.peft4j.core.PeftConfig;
import org.peft4j.core.PeftModel;
import org.peft4j.core.io.AtomicDirectory;
import org.peft4j.core.lm.CausalLanguageModel;
import org.peft4j.core.parallel.ShardGroup;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * A causal language model with a learned prefix in every attention layer.
 *
 * <p>Each forward pass takes the causal-LM input of the base model and, inside, puts the prefix's
 * keys and values {@code [B, kvHeads, P, headDim]} in front of the cache (or alone, on the first
 * step), prepends {@code P} ones to a 2-D attention mask (or {@code P} zero columns to an additive
 * 4-D mask), and shifts the positions by {@code P}, so the real tokens continue after the prefix as
 * in Hugging Face PEFT. The present key/values it returns are the base model's without the prefix
 * part: the cache a caller keeps is as long as the tokens it has seen, which DJL's {@code
 * TextGenerator} (greedy, beam and contrastive search) relies on, and the prefix is never stale in
 * it.
 *
 * <p>The prefix takes the first {@code P} positions, so a row may hold {@code P} tokens fewer than
 * the base model's context ({@link #getMaxPositions()}); a longer input is refused.
 *
 * <pre>{@code
 * PrefixConfig config = PrefixConfig.builder().fromModel(llama).setNumPrefixTokens(16).build();
 * PrefixModelForCausalLM model = new PrefixModelForCausalLM(llama, config);
 * model.markOnlyPrefixAsTrainable();
 * model.printTrainableParameters();
 * }</pre>
 */
public class PrefixModelForCausalLM extends PeftModel implements CausalLanguageModel {

    private final CausalLanguageModel base;
    private final PrefixConfig config;
    private final PrefixEncoder encoder;
    private boolean enabled = true;

    /**
     * Wraps a model with a new prefix; the prefix starts random ({@code N(0, 1)}, as Hugging
     * Face's), the base model is frozen. A config whose {@code tensor_parallel_degree} disagrees
     * with the model's is replaced by a copy with the model's, with a warning ({@link
     * PeftConfig#forModelDegree}).
     *
     * @param model the base model; its weights must be initialised
     * @param config the prefix config, which must fit the model
     * @throws IllegalArgumentException if the config disagrees with the model (each number named),
     *     or its prefix takes every position of the model's context
     */
    public PrefixModelForCausalLM(CausalLanguageModel model, PrefixConfig config) {
        super(model);
        config.checkFits(model);
        if (config.getNumPrefixTokens() >= model.getMaxPositions()) {
            throw new IllegalArgumentException(
                    "a prefix of "
                            + config.getNumPrefixTokens()
                            + " virtual tokens leaves no position of the model's "
                            + model.getMaxPositions()
                            + " for the input; use fewer prefix tokens");
        }
        this.base = model;
        this.config =
                PeftConfig.forModelDegree(
                        config,
                        model.getShardGroup().getDegree(),
                        degree -> config.toBuilder().optTensorParallelDegree(degree).build());
        this.encoder =
                addChildBlock(
                        "prefix_encoder", new PrefixEncoder(this.config, model.getShardGroup()));
        NDManager manager = weightManager(model);
        if (manager != null) {
            encoder.initialize(manager, config.getDtype(), new Shape(1));
        }
        markOnlyPrefixAsTrainable();
    }

    private static NDManager weightManager(Block model) {
        for (Parameter parameter : model.getParameters().values()) {
            if (parameter.isInitialized()) {
                return parameter.getArray().getManager();
            }
        }
        return null;
    }

    /** {@inheritDoc} */
    @Override
    public PrefixConfig getPeftConfig() {
        return config;
    }

    /**
     * Returns the prefix encoder.
     *
     * @return the encoder
     */
    public PrefixEncoder getPrefixEncoder() {
        return encoder;
    }

    /** {@inheritDoc} */
    @Override
    protected Map<String, Block> getAdapterBlocks() {
        return Map.of("prefix_encoder", encoder);
    }

    /**
     * Freezes the base model and makes every parameter of the prefix encoder trainable. Final
     * because the constructor calls it: an override would run before its class's fields are set.
     */
    public final void markOnlyPrefixAsTrainable() {
        for (Parameter parameter : getBaseModel().getParameters().values()) {
            parameter.freeze(true);
        }
        for (Parameter parameter : encoder.getParameters().values()) {
            parameter.freeze(false);
        }
    }

    /** {@inheritDoc} */
    @Override
    public AdapterScope disableAdapter() {
        boolean was = enabled;
        enabled = false;
        return () -> enabled = was;
    }

    /**
     * Computes the prefix as the model uses it.
     *
     * @param ps the parameter store
     * @param anchor an array whose manager and device the result takes (the input ids)
     * @param batch the batch size {@code B}
     * @param training whether dropout applies
     * @return {@code 2 L} arrays {@code [B, kvHeads / T, P, headDim]}: key and value of each layer
     */
    public NDList prefixKeyValues(ParameterStore ps, NDArray anchor, long batch, boolean training) {
        NDArray prefix = encoder.forward(ps, new NDList(anchor), training).head();
        if (prefix.getDataType() != DataType.FLOAT32) {
            prefix = prefix.toType(DataType.FLOAT32, false);
        }
        int layers2 = 2 * config.getNumHiddenLayers();
        // [P, 2L * kv * d] -> [2L, kv, P, d]; the 2L axis alternates key and value per layer.
        // A rank of a split model holds its own kv / T heads.
        NDArray stacked =
                prefix.reshape(
                                config.getNumPrefixTokens(),
                                layers2,
                                config.getNumKeyValueHeads() / encoder.getTensorParallelDegree(),
                                config.getHeadDim())
                        .transpose(1, 2, 0, 3)
                        .expandDims(1);
        if (batch > 1) {
            stacked = stacked.repeat(1, batch);
        }
        NDList out = new NDList(layers2);
        for (int i = 0; i < layers2; i++) {
            out.add(stacked.get(i));
        }
        return out;
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        if (!enabled) {
            return getBaseModel().forward(ps, inputs, training, params);
        }
        NDArray ids = inputs.get(0);
        NDManager manager = ids.getManager();
        long batch = ids.getShape().get(0);
        long length = ids.getShape().get(1);
        long tokens = config.getNumPrefixTokens();
        int layers2 = 2 * config.getNumHiddenLayers();
        boolean cached = inputs.size() > 3;
        long past = cached ? inputs.get(3).getShape().get(2) : 0;
        CausalLanguageModel.requireWithinContext(
                past,
                length,
                getMaxPositions(),
                () ->
                        "does not fit after the prefix: the base model has "
                                + base.getMaxPositions()
                                + " positions and the prefix's "
                                + tokens
                                + " virtual tokens take the first of them, leaving "
                                + getMaxPositions());

        NDList prefix = prefixKeyValues(ps, ids, batch, training);
        NDList keyValues = new NDList(layers2);
        for (int i = 0; i < layers2; i++) {
            keyValues.add(cached ? prefix.get(i).concat(inputs.get(3 + i), 2) : prefix.get(i));
        }
        NDArray positions =
                inputs.size() > 1
                        ? inputs.get(1)
                        : manager.arange(past, past + length, 1, DataType.INT64)
                                .reshape(1, length)
                                .repeat(0, batch);
        NDArray mask =
                inputs.size() > 2
                        ? inputs.get(2)
                        : manager.ones(new Shape(batch, past + length), DataType.INT64);
        NDList baseInput = new NDList(ids, positions.add(tokens), withPrefix(mask, tokens));
        baseInput.addAll(keyValues);
        NDList output = getBaseModel().forward(ps, baseInput, training, params);
        NDIndex afterPrefix = new NDIndex(":, :, {}:", tokens);
        for (int i = 1; i <= layers2; i++) {
            output.set(i, output.get(i).get(afterPrefix));
        }
        return output;
    }

    /** Prepends the prefix to a 2-D mask (ones) or a 4-D additive mask (zeros). */
    private static NDArray withPrefix(NDArray mask, long tokens) {
        NDManager manager = mask.getManager();
        Shape shape = mask.getShape();
        if (shape.dimension() == 2) {
            NDArray ones = manager.ones(new Shape(shape.get(0), tokens), mask.getDataType());
            return ones.concat(mask, 1);
        }
        if (shape.dimension() == 4) {
            Shape zerosShape = new Shape(shape.get(0), shape.get(1), shape.get(2), tokens);
            return NDArrays.concat(
                    new NDList(manager.zeros(zerosShape, mask.getDataType()), mask), 3);
        }
        throw new IllegalArgumentException(
                "the attention mask must be [batch, tokens] or [batch, 1, new, tokens], got "
                        + shape);
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(
            NDManager manager, DataType dataType, Shape... inputShapes) {
        super.initializeChildBlocks(manager, dataType, inputShapes);
        encoder.initialize(manager, config.getDtype(), new Shape(1));
    }

    /**
     * {@inheritDoc}
     *
     * <p>A prefix of a model split across ranks saves merged, as {@code savePretrained(dir, true)}
     * does.
     */
    @Override
    public void savePretrained(Path dir) throws IOException {
        savePretrained(dir, true);
    }

    /**
     * Writes the prefix. For a model split across ranks this is a collective that every rank calls:
     * merged, rank 0 writes the files a single-process model writes, the heads gathered; otherwise
     * every rank writes its heads to {@code adapter_model.tpRR-of-TT.safetensors} (and {@code
     * prefix_encoder.tpRR-of-TT.safetensors}) and rank 0 the configs. A model on one process
     * ignores the flag.
     *
     * <p>The directory is replaced all or nothing, as {@link PeftModel#savePretrained(Path)} says:
     * the ranks write into one staging directory and rank 0 swaps it in once every rank is done.
     *
     * @param dir the directory; created when missing
     * @param mergeTensorParallel whether to write one file rather than one per rank
     * @throws IOException if writing fails; the directory is then as it was
     * @throws IllegalArgumentException if {@code dir} is a file
     */
    public void savePretrained(Path dir, boolean mergeTensorParallel) throws IOException {
        PrefixCheckpoint.save(this, dir, mergeTensorParallel);
    }

    /** {@inheritDoc} */
    @Override
    public ShardGroup getShardGroup() {
        return base.getShardGroup();
    }

    /**
     * Wraps a model with the prefix saved in a directory: peft4j's or Hugging Face PEFT's format
     * ({@code adapter_config.json} and {@code adapter_model.safetensors} with {@code
     * prompt_embeddings}), or the seed's {@code prefix_config.json} with those weights.
     *
     * <p>With a projection, the encoder's own weights ({@code prefix_encoder.safetensors}, which
     * peft4j writes) make the prefix trainable as before; without them the saved prefix, the
     * projection's output, becomes a plain table.
     *
     * <p>A save of the directory that was killed is first finished or undone ({@link
     * AtomicDirectory#recover}).
     *
     * @param model the base model, with its weights
     * @param dir the adapter directory
     * @return the model with the prefix, the base frozen
     * @throws IOException if a file is missing or corrupt
     * @throws IllegalArgumentException if the prefix does not fit the model (layer count, heads,
     *     shapes: each named)
     */
    public static PrefixModelForCausalLM fromPretrained(CausalLanguageModel model, Path dir)
            throws IOException {
        AtomicDirectory.recover(dir); // a save killed mid-swap is finished or undone first
        return PrefixCheckpoint.load(model, dir);
    }

    /** {@inheritDoc} */
    @Override
    public int getNumHiddenLayers() {
        return base.getNumHiddenLayers();
    }

    /** {@inheritDoc} */
    @Override
    public int getNumAttentionHeads() {
        return base.getNumAttentionHeads();
    }

    /** {@inheritDoc} */
    @Override
    public int getNumKeyValueHeads() {
        return base.getNumKeyValueHeads();
    }

    /** {@inheritDoc} */
    @Override
    public int getHeadDim() {
        return base.getHeadDim();
    }

    /** {@inheritDoc} */
    @Override
    public int getHiddenSize() {
        return base.getHiddenSize();
    }

    /** {@inheritDoc} */
    @Override
    public int getVocabSize() {
        return base.getVocabSize();
    }

    /**
     * {@inheritDoc}
     *
     * <p>The base model's context less the prefix's virtual tokens, which take the first
     * positions; 0 when the prefix leaves none.
     */
    @Override
    public int getMaxPositions() {
        int positions = base.getMaxPositions();
        return positions == Integer.MAX_VALUE
                ? positions
                : Math.max(0, positions - config.getNumPrefixTokens());
    }
}
