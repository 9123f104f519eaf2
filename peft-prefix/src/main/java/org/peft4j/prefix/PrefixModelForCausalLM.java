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

import org.peft4j.core.AdapterNames;
import org.peft4j.core.AdapterScope;
import org.peft4j.core.PeftConfig;
import org.peft4j.core.PeftModel;
import org.peft4j.core.io.AtomicDirectory;
import org.peft4j.core.lm.CausalLanguageModel;
import org.peft4j.core.parallel.ShardGroup;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
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
 *
 * <p>A model may hold several named prefixes, as Hugging Face PEFT names adapters: the one the
 * constructor makes is {@value #DEFAULT_ADAPTER}, {@link #addAdapter} and {@link #loadAdapter} add
 * others, and {@link #setAdapter} picks the one the forward pass uses (one at a time: every row of
 * a batch uses the active prefix) and the only one that trains. {@link #savePretrained(Path)}
 * writes {@value #DEFAULT_ADAPTER} at the directory's root and every other prefix in a subfolder
 * of its name, as Hugging Face does; {@link #fromPretrained} restores the set. Named prefixes on a
 * model split across ranks ({@code getShardGroup().getDegree() > 1}) are not supported yet: such a
 * model holds only {@value #DEFAULT_ADAPTER}.
 */
public class PrefixModelForCausalLM extends PeftModel implements CausalLanguageModel {

    /** The name of the prefix the constructor makes, Hugging Face PEFT's default adapter name. */
    public static final String DEFAULT_ADAPTER = AdapterNames.DEFAULT;

    /** The child-block name of {@value #DEFAULT_ADAPTER}'s encoder; others add {@code .name}. */
    static final String ENCODER_BLOCK = "prefix_encoder";

    private final CausalLanguageModel base;
    private final Map<String, Prefix> prefixes = new LinkedHashMap<>();
    private String active = DEFAULT_ADAPTER;
    private boolean enabled = true;

    /** A named prefix: its config (the model's degree) and encoder. */
    private record Prefix(PrefixConfig config, PrefixEncoder encoder) {}

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
        this.base = model;
        PrefixConfig fitted = fitted(model, config);
        PrefixEncoder encoder = newEncoder(model, fitted);
        prefixes.put(DEFAULT_ADAPTER, new Prefix(fitted, addChildBlock(ENCODER_BLOCK, encoder)));
        markOnlyPrefixAsTrainable();
    }

    /**
     * Checks a config against the model as the constructor does and returns it at the model's
     * tensor-parallel degree.
     */
    static PrefixConfig fitted(CausalLanguageModel model, PrefixConfig config) {
        config.checkFits(model);
        if (config.getNumPrefixTokens() >= model.getMaxPositions()) {
            throw new IllegalArgumentException(
                    "a prefix of "
                            + config.getNumPrefixTokens()
                            + " virtual tokens leaves no position of the model's "
                            + model.getMaxPositions()
                            + " for the input; use fewer prefix tokens");
        }
        return PeftConfig.forModelDegree(
                config,
                model.getShardGroup().getDegree(),
                degree -> config.toBuilder().optTensorParallelDegree(degree).build());
    }

    /** A new encoder, random ({@code N(0, 1)}) on the base weights' manager when they exist. */
    static PrefixEncoder newEncoder(CausalLanguageModel model, PrefixConfig fitted) {
        PrefixEncoder encoder = new PrefixEncoder(fitted, model.getShardGroup());
        NDManager manager = weightManager(model);
        if (manager != null) {
            encoder.initialize(manager, fitted.getDtype(), new Shape(1));
        }
        return encoder;
    }

    private static NDManager weightManager(Block model) {
        for (Parameter parameter : model.getParameters().values()) {
            if (parameter.isInitialized()) {
                return parameter.getArray().getManager();
            }
        }
        return null;
    }

    /**
     * {@inheritDoc}
     *
     * <p>The active prefix's config.
     */
    @Override
    public PrefixConfig getPeftConfig() {
        return prefix(active).config();
    }

    /**
     * Returns the config of a named prefix, at the model's tensor-parallel degree.
     *
     * @param name the prefix's name
     * @return its config
     * @throws IllegalArgumentException if the model has no prefix of that name (the known names
     *     listed)
     */
    public PrefixConfig getPeftConfig(String name) {
        return prefix(name).config();
    }

    /**
     * Returns the active prefix's encoder.
     *
     * @return the encoder
     */
    public PrefixEncoder getPrefixEncoder() {
        return prefix(active).encoder();
    }

    /**
     * Returns the encoder of a named prefix.
     *
     * @param name the prefix's name
     * @return its encoder
     * @throws IllegalArgumentException if the model has no prefix of that name (the known names
     *     listed)
     */
    public PrefixEncoder getPrefixEncoder(String name) {
        return prefix(name).encoder();
    }

    /**
     * Returns the name of the prefix the forward pass uses and that trains.
     *
     * @return the active prefix's name, {@value #DEFAULT_ADAPTER} unless {@link #setAdapter} chose
     *     another
     */
    public String getActiveAdapter() {
        return active;
    }

    /**
     * Returns the names of the model's prefixes, in the order they were added.
     *
     * @return an unmodifiable list, {@value #DEFAULT_ADAPTER} first unless it was deleted
     */
    public List<String> getAdapterNames() {
        return Collections.unmodifiableList(new ArrayList<>(prefixes.keySet()));
    }

    /**
     * Adds a named prefix, random ({@code N(0, 1)}) as the constructor's, checked against the base
     * model as the constructor checks its config (a {@code tensor_parallel_degree} that disagrees
     * with the model's is replaced by the model's, with a warning). The new prefix is frozen and
     * not active: {@link #setAdapter} makes it the one that is used and trains.
     *
     * @param name the prefix's name: letters, digits, {@code _}, {@code .} and {@code -}, not
     *     starting with {@code .}; not {@code __base__}, an adapter file's name or a training
     *     checkpoint's ({@code checkpoint-N}), and not already used
     * @param config the prefix config, which must fit the model
     * @throws IllegalArgumentException if the name is refused, or the config disagrees with the
     *     model (each number named), or its prefix takes every position of the model's context
     * @throws IllegalStateException if the model is split across ranks (not supported yet)
     */
    public void addAdapter(String name, PrefixConfig config) {
        checkNewName(name);
        PrefixConfig fitted = fitted(base, config);
        addPrefix(name, fitted, newEncoder(base, fitted));
    }

    /**
     * Reads a saved prefix directory, whatever {@link #fromPretrained} reads of its root (peft4j's,
     * Hugging Face PEFT's or PaddleNLP's files), as a new named prefix, frozen and not active. The
     * name, the config and the weights are all checked before the model changes: a refused or
     * corrupt directory leaves the model as it was. Subfolders of the directory are not read.
     *
     * @param dir the adapter directory; a save of it that was killed is first finished or undone
     * @param name the new prefix's name, as {@link #addAdapter} takes it
     * @throws IOException if a file is missing or corrupt
     * @throws IllegalArgumentException if the name is refused or the prefix does not fit the model
     *     (layer count, heads, shapes: each named)
     * @throws IllegalStateException if the model is split across ranks (not supported yet), or the
     *     base model has no weights yet
     */
    public void loadAdapter(Path dir, String name) throws IOException {
        checkNewName(name);
        AtomicDirectory.recover(dir);
        PrefixCheckpoint.loadNamed(this, dir, name);
    }

    /**
     * Makes a prefix the active one: the forward pass uses it, and only its encoder's parameters
     * are trainable, the other prefixes' and the base model's frozen (as {@link
     * #markOnlyPrefixAsTrainable}). Hugging Face's {@code set_adapter}.
     *
     * @param name the prefix's name
     * @throws IllegalArgumentException if the model has no prefix of that name (the known names
     *     listed)
     */
    public void setAdapter(String name) {
        prefix(name);
        active = name;
        markOnlyPrefixAsTrainable();
    }

    /**
     * Deletes a prefix that is not active: its parameters' arrays are closed and its encoder leaves
     * the model.
     *
     * @param name the prefix's name
     * @throws IllegalArgumentException if the model has no prefix of that name (the known names
     *     listed)
     * @throws IllegalStateException if it is the active one
     */
    public void deleteAdapter(String name) {
        Prefix prefix = prefix(name);
        if (name.equals(active)) {
            throw new IllegalStateException(
                    "cannot delete the prefix \""
                            + name
                            + "\": it is the active one; setAdapter another first (the model holds "
                            + prefixes.keySet()
                            + ")");
        }
        prefixes.remove(name);
        // DJL keys children by position ("%02d" + name), which BlockPaths strips by position:
        // the children after the removed one are renumbered as addChildBlock would have named them
        List<String> names = new ArrayList<>();
        List<Block> blocks = new ArrayList<>();
        for (int i = 0; i < children.size(); i++) {
            if (children.valueAt(i) != prefix.encoder()) {
                names.add(children.keyAt(i).substring(position(i).length()));
                blocks.add(children.valueAt(i));
            }
        }
        children.clear();
        for (int i = 0; i < names.size(); i++) {
            children.add(position(i) + names.get(i), blocks.get(i));
        }
        for (Parameter parameter : prefix.encoder().getParameters().values()) {
            parameter.close();
        }
    }

    /** {@inheritDoc} */
    @Override
    protected Map<String, Block> getAdapterBlocks() {
        Map<String, Block> blocks = new LinkedHashMap<>();
        prefixes.forEach((name, prefix) -> blocks.put(blockName(name), prefix.encoder()));
        return Collections.unmodifiableMap(blocks);
    }

    /**
     * Freezes the base model and every prefix but the active one, and makes every parameter of the
     * active prefix's encoder trainable. Final because the constructor calls it: an override would
     * run before its class's fields are set.
     */
    public final void markOnlyPrefixAsTrainable() {
        for (Parameter parameter : getBaseModel().getParameters().values()) {
            parameter.freeze(true);
        }
        prefixes.forEach(
                (name, prefix) -> {
                    boolean train = name.equals(active);
                    for (Parameter parameter : prefix.encoder().getParameters().values()) {
                        parameter.freeze(!train);
                    }
                });
    }

    /** Registers a checked, filled encoder under a checked name, frozen. */
    void addPrefix(String name, PrefixConfig fitted, PrefixEncoder encoder) {
        for (Parameter parameter : encoder.getParameters().values()) {
            parameter.freeze(true);
        }
        prefixes.put(name, new Prefix(fitted, addChildBlock(blockName(name), encoder)));
    }

    private static String position(int index) {
        return String.format(Locale.ROOT, "%02d", index + 1);
    }

    /** The block name of a prefix, which its parameter paths start with. */
    static String blockName(String name) {
        return DEFAULT_ADAPTER.equals(name) ? ENCODER_BLOCK : ENCODER_BLOCK + '.' + name;
    }

    /** Refuses a name a new prefix cannot take, and named prefixes on a split model. */
    void checkNewName(String name) {
        String problem = AdapterNames.problem(name);
        if (problem != null) {
            throw new IllegalArgumentException("the prefix name \"" + name + "\" " + problem);
        }
        if (prefixes.containsKey(name)) {
            throw new IllegalArgumentException(
                    "the prefix name \""
                            + name
                            + "\" is already used; choose another, or deleteAdapter(\""
                            + name
                            + "\") first (the model holds "
                            + prefixes.keySet()
                            + ")");
        }
        if (base.getShardGroup().getDegree() > 1) {
            throw new IllegalStateException(
                    "named prefixes on a tensor-parallel model are not supported yet; this model"
                            + " is split across "
                            + base.getShardGroup().getDegree()
                            + " ranks and holds only \""
                            + DEFAULT_ADAPTER
                            + "\" (use one model per prefix)");
        }
    }

    private Prefix prefix(String name) {
        Prefix prefix = prefixes.get(name);
        if (prefix == null) {
            throw new IllegalArgumentException(
                    "the model has no prefix \""
                            + name
                            + "\"; it holds "
                            + prefixes.keySet()
                            + " (addAdapter or loadAdapter adds one)");
        }
        return prefix;
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
        PrefixConfig config = getPeftConfig();
        PrefixEncoder encoder = getPrefixEncoder();
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
        PrefixConfig config = getPeftConfig();
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
        for (Prefix prefix : prefixes.values()) {
            prefix.encoder().initialize(manager, prefix.config().getDtype(), new Shape(1));
        }
    }

    /**
     * {@inheritDoc}
     *
     * <p>Every prefix is written: {@value #DEFAULT_ADAPTER} at the directory's root, every other in
     * the subfolder {@code dir/<name>/} with its own configs and weights, as Hugging Face PEFT lays
     * them out, in the one replacement of the directory (all or nothing). A model that holds only
     * {@value #DEFAULT_ADAPTER} writes the files it always wrote; one whose {@value
     * #DEFAULT_ADAPTER} was deleted writes only subfolders, as {@link #savePretrained(Path, List)}
     * says. A prefix of a model split across ranks saves merged, as {@code savePretrained(dir,
     * true)} does.
     */
    @Override
    public void savePretrained(Path dir) throws IOException {
        savePretrained(dir, true);
    }

    /**
     * Writes the prefixes, as {@link #savePretrained(Path)} lays them out. For a model split across
     * ranks (which holds only {@value #DEFAULT_ADAPTER}) this is a collective that every rank
     * calls: merged, rank 0 writes the files a single-process model writes, the heads gathered;
     * otherwise every rank writes its heads to {@code adapter_model.tpRR-of-TT.safetensors} (and
     * {@code prefix_encoder.tpRR-of-TT.safetensors}) and rank 0 the configs. A model on one process
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
        PrefixCheckpoint.save(this, dir, mergeTensorParallel, getAdapterNames());
    }

    /**
     * Writes some of the prefixes, as Hugging Face's {@code save_pretrained(selected_adapters=)}:
     * {@value #DEFAULT_ADAPTER}, when selected, at the root, every other selected one in {@code
     * dir/<name>/}, in one all-or-nothing replacement. When {@value #DEFAULT_ADAPTER} is not
     * selected the root holds no adapter files (an earlier save's are removed, as every save
     * replaces the root's adapter files); subfolders this save does not write stay as they were,
     * as Hugging Face leaves them (delete one to drop that prefix from the directory).
     *
     * @param dir the directory; created when missing
     * @param selectedAdapters the names of the prefixes to write, at least one; written in the
     *     model's order
     * @throws IOException if writing fails; the directory is then as it was
     * @throws IllegalArgumentException if {@code dir} is a file, the list is empty, or it names a
     *     prefix the model does not hold (the known names listed)
     */
    public void savePretrained(Path dir, List<String> selectedAdapters) throws IOException {
        if (selectedAdapters.isEmpty()) {
            throw new IllegalArgumentException(
                    "no prefix selected to save; select some of " + prefixes.keySet());
        }
        for (String name : selectedAdapters) {
            prefix(name);
        }
        List<String> names = new ArrayList<>(prefixes.keySet());
        names.retainAll(selectedAdapters);
        PrefixCheckpoint.save(this, dir, true, names);
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
     * <p>The root is the {@value #DEFAULT_ADAPTER} prefix, which is active; every immediate
     * subfolder that holds a prefix config ({@code prefix_config.json}, or an {@code
     * adapter_config.json} of a prefix) and whose name a prefix may take is added as the prefix of
     * its name ({@link #loadAdapter}), in sorted name order, frozen: the set {@link
     * #savePretrained(Path)} wrote. A training run's {@code checkpoint-N} subfolders, hidden ones
     * and a subfolder named {@value #DEFAULT_ADAPTER} are not read. On a model split across ranks
     * the subfolders are skipped, with a warning (named prefixes are not supported there yet).
     *
     * <p>A save of the directory that was killed is first finished or undone ({@link
     * AtomicDirectory#recover}).
     *
     * @param model the base model, with its weights
     * @param dir the adapter directory
     * @return the model with the prefixes, the base frozen
     * @throws IOException if a file is missing or corrupt (of a subfolder too: the message names
     *     it)
     * @throws IllegalArgumentException if a prefix does not fit the model (layer count, heads,
     *     shapes: each named)
     */
    public static PrefixModelForCausalLM fromPretrained(CausalLanguageModel model, Path dir)
            throws IOException {
        AtomicDirectory.recover(dir); // a save killed mid-swap is finished or undone first
        return PrefixCheckpoint.loadSet(model, dir);
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
     * <p>The base model's context less the active prefix's virtual tokens, which take the first
     * positions; 0 when the prefix leaves none.
     */
    @Override
    public int getMaxPositions() {
        int positions = base.getMaxPositions();
        return positions == Integer.MAX_VALUE
                ? positions
                : Math.max(0, positions - getPeftConfig().getNumPrefixTokens());
    }
}
