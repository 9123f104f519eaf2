package org.peft4j.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;

import org.peft4j.core.AdapterNames;
import org.peft4j.core.AdapterScope;
import org.peft4j.core.PeftConfig;
import org.peft4j.core.PeftModel;
import org.peft4j.core.io.AtomicDirectory;
import org.peft4j.core.parallel.Shardings;
import org.peft4j.core.tree.BlockPaths;
import org.peft4j.core.tree.BlockReplacer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A model whose targeted {@link Linear} layers carry LoRA adapters.
 *
 * <pre>{@code
 * LoRAConfig config = LoRAConfig.builder().setTargetModules(".*q_proj.*", ".*v_proj.*")
 *         .optR(8).optLoraAlpha(16).build();
 * LoRAModel model = new LoRAModel(llama, config);   // swaps the matching Linear layers
 * model.markOnlyLoRAAsTrainable();
 * model.printTrainableParameters();
 * // train with a DJL Trainer: Model.setBlock(model) ...
 * model.savePretrained(Paths.get("lora_path"));
 * LoRAModel loaded = LoRAModel.fromPretrained(otherLlama, Paths.get("lora_path"));
 * }</pre>
 *
 * <p>Construction replaces every matched layer of the base model (in place: the base model's tree
 * now holds {@link LoRALinear} layers sharing the original weights) and freezes everything but the
 * adapter, as {@link #markOnlyLoRAAsTrainable()} does.
 *
 * <p>Modes follow the seed: the model starts in training mode; with {@code merge_weights}, {@link
 * #eval()} merges the adapters into the base weights and {@link #train()} unmerges them.
 */
public class LoRAModel extends PeftModel {

    /** The name of the adapter the constructor adds. */
    public static final String DEFAULT_ADAPTER = AdapterNames.DEFAULT;

    /** The name that, in a mixed batch ({@link #forAdapterRows}), runs a row on the base model. */
    public static final String BASE_ADAPTER = AdapterNames.BASE;

    private final Map<String, LoRAConfig> configs = new LinkedHashMap<>();
    private final Map<String, LoRALinear> layers = new LinkedHashMap<>();
    private List<String> active = List.of(DEFAULT_ADAPTER);
    private boolean training = true;
    private boolean unloaded;
    private boolean rowsOpen;

    /**
     * Adapts the layers of a model that the config targets, as the adapter {@value
     * #DEFAULT_ADAPTER}. A config whose {@code tensor_parallel_degree} disagrees with the model's
     * is replaced by a copy with the model's, with a warning ({@link PeftConfig#forModelDegree}).
     *
     * @param model the base model; initialised or not
     * @param config the adapter's config
     * @throws IllegalArgumentException if the targets match nothing, match a block that is not a
     *     {@code Linear}, or a matched layer cannot be replaced inside its parent
     */
    public LoRAModel(Block model, LoRAConfig config) {
        super(model);
        LoRAConfig fitted =
                PeftConfig.forModelDegree(
                        config,
                        Shardings.degree(model),
                        degree -> config.toBuilder().optTensorParallelDegree(degree).build());
        adapt(DEFAULT_ADAPTER, fitted);
        markOnlyLoRAAsTrainable();
    }

    /** Adds an adapter's branches: to layers already adapted, or by wrapping new ones. */
    private void adapt(String name, LoRAConfig config) {
        Block model = getBaseModel();
        Map<String, Linear> targets = LoRATargets.find(model, config, !configs.isEmpty());
        for (Map.Entry<String, Linear> target : targets.entrySet()) {
            LoRALinear.Builder settings =
                    LoRALinear.builder(target.getValue())
                            .setR(config.getR())
                            .optScaling(config.getScaling())
                            .optDropout(config.getLoraDropout())
                            .optInit(config.getInitLoraWeights())
                            .optDtype(config.getDtype())
                            .optPath(target.getKey())
                            .optAdapterName(name);
            if (target.getValue() instanceof LoRALinear) {
                LoRALinear layer = (LoRALinear) target.getValue();
                layer.addAdapter(settings);
                layer.setActiveAdapters(active);
            } else {
                LoRALinear layer = settings.build();
                layer.setActiveAdapters(active);
                BlockReplacer.replace(model, target.getKey(), layer);
                layers.put(target.getKey(), layer);
            }
        }
        configs.put(name, config);
        sortLayers();
    }

    /** Keeps the adapted layers in tree order, however many adapters added them. */
    private void sortLayers() {
        Map<String, LoRALinear> sorted = new LinkedHashMap<>();
        for (String path : BlockPaths.blocks(getBaseModel()).keySet()) {
            LoRALinear layer = layers.get(path);
            if (layer != null) {
                sorted.put(path, layer);
            }
        }
        layers.clear();
        layers.putAll(sorted);
    }

    /**
     * Adds another adapter, inactive and frozen, beside the ones the model has: its branches join
     * the layers its targets select (wrapping those not yet adapted). Adapters may differ in
     * {@code r}, {@code lora_alpha}, targets, dropout and init; {@link #setAdapter} makes it the
     * one that runs and trains.
     *
     * <p>Not supported yet, and refused: a further adapter on a tensor-parallel model, and
     * several adapters where one trains base parameters ({@code bias}, {@code
     * trainable_modules}), which the adapters would share.
     *
     * @param name the new adapter's name ({@link AdapterNames})
     * @param config its config
     * @throws IllegalArgumentException if the name is taken or not allowed, or the targets match
     *     nothing or a block that is not a {@code Linear}; the model is then unchanged
     * @throws IllegalStateException on a tensor-parallel model, if this or an existing adapter
     *     trains base parameters, or inside {@link #forAdapterRows}
     */
    public void addAdapter(String name, LoRAConfig config) {
        checkNotUnloaded();
        checkNoRowsOpen("adding an adapter");
        AdapterNames.check(name);
        if (configs.containsKey(name)) {
            throw new IllegalArgumentException(
                    "the model already has an adapter named \""
                            + name
                            + "\" (it holds "
                            + configs.keySet()
                            + "); choose another name, or deleteAdapter(\""
                            + name
                            + "\") first");
        }
        if (Shardings.degree(getBaseModel()) > 1) {
            throw new IllegalStateException(
                    "named adapters on a tensor-parallel model are not supported yet; this model"
                            + " holds only \""
                            + DEFAULT_ADAPTER
                            + "\" (use one model per adapter)");
        }
        Map<String, LoRAConfig> all = new LinkedHashMap<>(configs);
        all.put(name, config);
        all.forEach(LoRAModel::checkSharesNoBaseParameter);
        adapt(name, config);
        markOnlyLoRAAsTrainable();
    }

    private static void checkSharesNoBaseParameter(String name, LoRAConfig config) {
        if (config.getTrainableBias() != TrainableBias.NONE
                || !config.getTrainableModules().isEmpty()) {
            throw new IllegalStateException(
                    "adapter \""
                            + name
                            + "\" trains base parameters (bias "
                            + config.getTrainableBias()
                            + ", trainable_modules "
                            + config.getTrainableModules()
                            + "), which several adapters on one model would share; use one"
                            + " model per such adapter, or adapters with bias none and no"
                            + " trainable_modules");
        }
    }

    /**
     * Reads a saved adapter (Hugging Face PEFT, the seed's or PaddleNLP's format) as a further
     * named adapter, inactive and frozen, as {@link #addAdapter} adds one; its file is checked
     * key by key and shape by shape, and on any fault the model is as it was.
     *
     * @param dir the adapter directory
     * @param name the name to give it
     * @throws IOException if a file cannot be read, or the weights file is missing or corrupt
     * @throws IllegalArgumentException if the adapter does not fit the model, or the name is taken
     */
    public void loadAdapter(Path dir, String name) throws IOException {
        AtomicDirectory.recover(dir);
        LoRAConfig config = LoRAConfig.fromPretrained(dir);
        addAdapter(name, config);
        try {
            LoRACheckpoint.loadWeights(this, name, dir);
        } catch (IOException | RuntimeException e) {
            deleteAdapter(name);
            throw e;
        }
    }

    /**
     * Loads new weights into an existing adapter in place, without rebuilding the model (Hugging
     * Face's {@code hotswap_adapter}): the new adapter must adapt the same layers with the same
     * {@code r}; its {@code lora_alpha} may differ (the scaling follows). Its dropout and init
     * only matter to training and are not taken. A server swaps adapters this way between
     * requests without touching the model's tree.
     *
     * @param dir the new adapter's directory
     * @param name the adapter whose weights it replaces
     * @throws IOException if a file cannot be read, or the weights file is missing or corrupt
     * @throws IllegalArgumentException if the name is unknown, or the new adapter's layers, rank
     *     or shapes differ (each named); the adapter is then unchanged
     * @throws IllegalStateException if the adapter is merged
     */
    public void hotswapAdapter(Path dir, String name) throws IOException {
        checkNotUnloaded();
        checkKnown(name);
        checkNotMerged(name, "hot-swapping it");
        AtomicDirectory.recover(dir);
        LoRAConfig read = LoRAConfig.fromPretrained(dir);
        LoRAConfig config =
                PeftConfig.forModelDegree(
                        read,
                        Shardings.degree(getBaseModel()),
                        degree -> read.toBuilder().optTensorParallelDegree(degree).build());
        LoRAHotswap.swap(this, name, config, dir);
        configs.put(name, config);
    }

    /** Gives an adapter's branches a new factor {@code s} after a hot swap. */
    void rescale(String name, double scaling) {
        for (LoRALinear layer : getLoRALayers(name).values()) {
            layer.setScaling(name, scaling);
        }
    }

    /**
     * Makes one adapter the one that runs and trains: its parameters are trainable, every other
     * adapter's frozen (as Hugging Face's {@code set_adapter} does).
     *
     * @param name the adapter
     * @throws IllegalArgumentException if the model has no such adapter
     */
    public void setAdapter(String name) {
        setAdapters(name);
    }

    /**
     * Activates several adapters at once: on each layer their deltas add, {@code y = x W^T + b +
     * sum_i s_i (x A_i^T) B_i^T}, and all of them train.
     *
     * @param names the adapters, at least one, each once
     * @throws IllegalArgumentException if a name is unknown or repeated, or none is given
     */
    public void setAdapters(String... names) {
        checkNotUnloaded();
        if (names.length == 0) {
            throw new IllegalArgumentException(
                    "name at least one adapter of " + configs.keySet() + "; disableAdapter() runs"
                            + " the base model");
        }
        List<String> chosen = List.of(names);
        for (String name : chosen) {
            checkKnown(name);
        }
        if (new LinkedHashSet<>(chosen).size() != chosen.size()) {
            throw new IllegalArgumentException("an adapter is named twice in " + chosen);
        }
        active = chosen;
        layers.values().forEach(layer -> layer.setActiveAdapters(chosen));
        markOnlyLoRAAsTrainable();
    }

    /**
     * Returns the adapters that run and train.
     *
     * @return an unmodifiable list, in order
     */
    public List<String> getActiveAdapters() {
        return active;
    }

    /**
     * Returns every adapter's name.
     *
     * @return an unmodifiable list, {@value #DEFAULT_ADAPTER} first unless deleted
     */
    public List<String> getAdapterNames() {
        return List.copyOf(configs.keySet());
    }

    /**
     * Removes an adapter: its branches and their arrays go, and layers no other adapter targets
     * get their original {@code Linear} back.
     *
     * @param name an inactive, unmerged adapter
     * @throws IllegalArgumentException if the model has no such adapter
     * @throws IllegalStateException if it is active or merged, or inside {@link #forAdapterRows}
     */
    public void deleteAdapter(String name) {
        checkNotUnloaded();
        checkNoRowsOpen("deleting an adapter");
        checkKnown(name);
        if (active.contains(name)) {
            throw new IllegalStateException(
                    "adapter \""
                            + name
                            + "\" is active; setAdapter another of "
                            + configs.keySet()
                            + " first");
        }
        checkNotMerged(name, "deleting it");
        for (Map.Entry<String, LoRALinear> entry : getLoRALayers(name).entrySet()) {
            LoRALinear layer = entry.getValue();
            layer.deleteAdapter(name);
            if (layer.getBranches().isEmpty()) {
                putBackOriginal(entry.getKey(), layer);
                layers.remove(entry.getKey());
            }
        }
        configs.remove(name);
    }

    private void checkNoRowsOpen(String action) {
        if (rowsOpen) {
            throw new IllegalStateException(
                    "a mixed-batch scope (forAdapterRows) is open; close it before " + action);
        }
    }

    private void checkKnown(String name) {
        if (!configs.containsKey(name)) {
            throw new IllegalArgumentException(
                    "the model has no adapter \""
                            + name
                            + "\"; it holds "
                            + configs.keySet()
                            + " (addAdapter or loadAdapter adds one)");
        }
    }

    private void checkNotMerged(String name, String action) {
        for (LoRALinear layer : layers.values()) {
            if (layer.getMergedAdapters().contains(name)) {
                throw new IllegalStateException(
                        "adapter \""
                                + name
                                + "\" is merged into the base weights; unmerge() before "
                                + action);
            }
        }
    }

    /**
     * Opens a scope in which every row of a batch uses its own adapter (Hugging Face's {@code
     * adapter_names}): the model's output row {@code i} equals what the model computes for that row
     * alone with only {@code names[i]} active, or the base model's for {@link #BASE_ADAPTER}.
     * Each adapted layer computes each adapter's rows together, not the whole batch once per
     * adapter. The rows are axis 0 of every adapted layer's input, as in a {@code [B, T]} batch
     * of a causal LM and in {@link org.peft4j.core.lm.CausalLMGenerator}, which keeps its rows in
     * order to the end.
     *
     * <pre>{@code
     * try (AdapterScope rows = lora.forAdapterRows(List.of("sql", "__base__", "chat"))) {
     *     List<int[]> out = generator.generate(prompts, generation, manager);
     * }
     * }</pre>
     *
     * <p>For inference: a training pass inside the scope, or merged adapters, are refused.
     *
     * @param names one adapter name per row
     * @return the scope; closing it returns to the active adapters
     * @throws IllegalArgumentException if a name is unknown, or the list empty
     * @throws IllegalStateException if a scope is already open or an adapter is merged
     */
    public AdapterScope forAdapterRows(List<String> names) {
        checkNotUnloaded();
        AdapterRows rows = new AdapterRows(names);
        for (String name : rows.getGroups().keySet()) {
            if (!BASE_ADAPTER.equals(name)) {
                checkKnown(name);
            }
        }
        if (isMerged()) {
            throw new IllegalStateException(
                    "a mixed-adapter batch needs the adapters unmerged; call unmerge() (or"
                            + " train()) first");
        }
        if (rowsOpen) {
            throw new IllegalStateException(
                    "a mixed-batch scope is already open; close it before opening another");
        }
        rowsOpen = true;
        layers.values().forEach(layer -> layer.setAdapterRows(rows));
        return () -> {
            layers.values().forEach(layer -> layer.setAdapterRows(null));
            rowsOpen = false;
        };
    }

    /**
     * {@inheritDoc}
     *
     * <p>None for LoRA: its layers sit inside the base model. Final, as the methods the
     * constructor freezes through are, so that no subclass code runs before its fields are set.
     */
    @Override
    protected final Map<String, Block> getAdapterBlocks() {
        return Collections.emptyMap();
    }

    /**
     * {@inheritDoc}
     *
     * <p>The config of the first active adapter, Hugging Face's {@code active_peft_config}.
     */
    @Override
    public LoRAConfig getPeftConfig() {
        return configs.get(active.get(0));
    }

    /**
     * Returns an adapter's config.
     *
     * @param name the adapter
     * @return its config
     * @throws IllegalArgumentException if the model has no such adapter
     */
    public LoRAConfig getPeftConfig(String name) {
        checkKnown(name);
        return configs.get(name);
    }

    /**
     * Returns the adapted layers, whichever adapters they carry.
     *
     * @return an ordered, unmodifiable map from logical path to layer
     */
    public Map<String, LoRALinear> getLoRALayers() {
        return Collections.unmodifiableMap(layers);
    }

    /**
     * Returns the layers that carry an adapter.
     *
     * @param name the adapter
     * @return an ordered, unmodifiable map from logical path to layer
     * @throws IllegalArgumentException if the model has no such adapter
     */
    public Map<String, LoRALinear> getLoRALayers(String name) {
        checkKnown(name);
        Map<String, LoRALinear> own = new LinkedHashMap<>();
        layers.forEach(
                (path, layer) -> {
                    if (layer.getBranches().containsKey(name)) {
                        own.put(path, layer);
                    }
                });
        return Collections.unmodifiableMap(own);
    }

    /**
     * Freezes every parameter except the active adapters': {@code lora_A} and {@code lora_B} of
     * each layer they adapt, the biases that {@code bias}/{@code trainable_bias} names, and the
     * parameters whose paths match {@code trainable_modules}. Final because the constructor calls
     * it: an override would run before its class's fields are set.
     */
    public final void markOnlyLoRAAsTrainable() {
        checkNotUnloaded();
        Set<Parameter> trainable = Collections.newSetFromMap(new IdentityHashMap<>());
        for (String name : active) {
            trainable.addAll(adapterState(name).values());
        }
        for (Parameter parameter : getNamedParameters().values()) {
            parameter.freeze(!trainable.contains(parameter));
        }
    }

    /**
     * Returns the parameters an adapter file holds, by the logical path they are saved under:
     * {@code <layer>.lora_A.weight} and {@code <layer>.lora_B.weight} for each adapted layer, then
     * the biases and {@code trainable_modules} parameters that train with the adapter, under their
     * own paths.
     *
     * <p>This is the one active adapter's state; {@link #adapterState(String)} gives any
     * adapter's.
     *
     * @return an ordered, unmodifiable map; the saved key is {@code base_model.model.} + path
     * @throws IllegalStateException if several adapters are active
     */
    public final Map<String, Parameter> adapterState() {
        if (active.size() != 1) {
            throw new IllegalStateException(
                    active.size() + " adapters are active " + active + "; ask adapterState(name)");
        }
        return adapterState(active.get(0));
    }

    /**
     * Returns the parameters an adapter's file holds, by the logical path they are saved under, as
     * {@link #adapterState()} describes.
     *
     * @param name the adapter
     * @return an ordered, unmodifiable map; the saved key is {@code base_model.model.} + path
     * @throws IllegalArgumentException if the model has no such adapter
     */
    public final Map<String, Parameter> adapterState(String name) {
        LoRAConfig config = getPeftConfig(name);
        Map<String, LoRALinear> own = getLoRALayers(name);
        Map<String, Parameter> state = new LinkedHashMap<>();
        for (Map.Entry<String, LoRALinear> layer : own.entrySet()) {
            LoRABranch branch = layer.getValue().getBranch(name);
            state.put(layer.getKey() + ".lora_A.weight", branch.getLoraA());
            state.put(layer.getKey() + ".lora_B.weight", branch.getLoraB());
        }
        List<Parameter> loraBiases = new ArrayList<>();
        for (LoRALinear layer : own.values()) {
            if (layer.getBias() != null) {
                loraBiases.add(layer.getBias());
            }
        }
        for (Map.Entry<String, Parameter> entry : getNamedParameters().entrySet()) {
            Parameter parameter = entry.getValue();
            boolean bias = parameter.getType() == Parameter.Type.BIAS;
            boolean trains =
                    config.getTrainableBias() == TrainableBias.ALL && bias
                            || config.getTrainableBias() == TrainableBias.LORA
                                    && loraBiases.contains(parameter)
                            || config.isTrainableModule(entry.getKey());
            if (trains && !state.containsValue(parameter)) {
                state.put(entry.getKey(), parameter);
            }
        }
        return Collections.unmodifiableMap(state);
    }

    /**
     * Enters training mode: with {@code merge_weights}, unmerges the adapters so that they train.
     */
    public void train() {
        checkNotUnloaded();
        training = true;
        if (getPeftConfig().isMergeWeights()) {
            unmerge();
        }
    }

    /** Enters evaluation mode: with {@code merge_weights}, merges the adapters (safely). */
    public void eval() {
        checkNotUnloaded();
        training = false;
        if (getPeftConfig().isMergeWeights()) {
            merge(true);
        }
    }

    /**
     * Returns the mode last set by {@link #train()} or {@link #eval()}.
     *
     * @return true in training mode (the initial mode)
     */
    public boolean isTraining() {
        return training;
    }

    /**
     * Returns whether adapters are merged into the base weights.
     *
     * @return true when some adapter is merged
     */
    public boolean isMerged() {
        return layers.values().stream().anyMatch(LoRALinear::isMerged);
    }

    /** Merges the active adapters into their base weights, without checking the result. */
    public void merge() {
        merge(false);
    }

    /**
     * Merges the active adapters into their base weights.
     *
     * @param safe whether to refuse, leaving that weight unchanged, a merge that gives NaN or
     *     infinity
     * @throws IllegalStateException if {@code safe} and a merged weight is not finite; layers
     *     merged before it stay merged, so call {@link #unmerge()} to return to a clean state
     */
    public void merge(boolean safe) {
        merge(safe, active.toArray(new String[0]));
    }

    /**
     * Merges the named adapters into their base weights, whether active or not; an adapter
     * already merged stays as it is.
     *
     * @param safe whether to refuse, leaving that weight unchanged, a merge that gives NaN or
     *     infinity
     * @param names the adapters to fold in
     * @throws IllegalArgumentException if a name is unknown
     * @throws IllegalStateException if {@code safe} and a merged weight is not finite; layers
     *     merged before it stay merged, so call {@link #unmerge()} to return to a clean state
     */
    public void merge(boolean safe, String... names) {
        checkNotUnloaded();
        for (String name : names) {
            checkKnown(name);
        }
        for (LoRALinear layer : layers.values()) {
            layer.merge(safe, List.of(names));
        }
    }

    /** Subtracts every merged adapter from its base weight again. */
    public void unmerge() {
        checkNotUnloaded();
        for (LoRALinear layer : layers.values()) {
            layer.unmerge();
        }
    }

    /** {@inheritDoc} */
    @Override
    public AdapterScope disableAdapter() {
        checkNotUnloaded();
        Map<LoRALinear, List<String>> wasMerged = new IdentityHashMap<>();
        for (LoRALinear layer : layers.values()) {
            wasMerged.put(layer, new ArrayList<>(layer.getMergedAdapters()));
            layer.unmerge();
            layer.setEnabled(false);
        }
        return () ->
                wasMerged.forEach(
                        (layer, names) -> {
                            layer.setEnabled(true);
                            layer.merge(false, names);
                        });
    }

    /**
     * Merges the adapters (safely) and puts the original {@link Linear} layers back, so that the
     * base model is a plain model with merged weights. This model is unusable afterwards.
     *
     * @return the base model
     * @throws IllegalStateException if a merged weight would hold NaN or infinity
     */
    public Block mergeAndUnload() {
        merge(true);
        return unload();
    }

    /**
     * Merges the named adapters (safely) and puts the original {@link Linear} layers back, the
     * other adapters dropped. This model is unusable afterwards.
     *
     * @param names the adapters to fold in
     * @return the base model
     * @throws IllegalArgumentException if a name is unknown
     * @throws IllegalStateException if a merged weight would hold NaN or infinity
     */
    public Block mergeAndUnload(String... names) {
        merge(true, names);
        return unload();
    }

    /**
     * Puts the original {@link Linear} layers back without merging, dropping the adapters. This
     * model is unusable afterwards.
     *
     * @return the base model with its original weights (unmerged first if merged)
     */
    public Block unload() {
        checkNotUnloaded();
        for (Map.Entry<String, LoRALinear> entry : layers.entrySet()) {
            LoRALinear layer = entry.getValue();
            putBackOriginal(entry.getKey(), layer);
            for (Parameter parameter : layer.adapterParameters()) {
                parameter.close();
            }
        }
        unloaded = true;
        return getBaseModel();
    }

    /** Puts a layer's original {@link Linear} back at its path in the base model. */
    private void putBackOriginal(String path, LoRALinear layer) {
        restoreInputShapes(layer, layer.getBaseLayer());
        BlockReplacer.replace(getBaseModel(), path, layer.getBaseLayer());
    }

    /**
     * Marks the original layer initialised (DJL ties that to known input shapes), so that a later
     * {@code initialize} does not try to reshape its already-set weight.
     */
    private static void restoreInputShapes(LoRALinear layer, Linear original) {
        if (!original.isInitialized() && layer.isInitialized()) {
            NDArray weight = layer.getWeight().getArray();
            Shape[] shapes = layer.getInputShapes();
            original.initialize(weight.getManager(), weight.getDataType(), shapes);
        }
    }

    /**
     * {@inheritDoc}
     *
     * <p>Every adapter is written, in Hugging Face's layout: {@value #DEFAULT_ADAPTER} at the
     * root, each other in a subfolder named after it. A tensor-parallel model saves merged, as
     * {@code savePretrained(dir, true)} does.
     */
    @Override
    public void savePretrained(Path dir) throws IOException {
        savePretrained(dir, true);
    }

    /**
     * Writes every adapter, as {@link #savePretrained(Path, List)} does. On a tensor-parallel
     * model (layers of peft-parallel) this is a collective that every rank calls: merged, the
     * split tensors are gathered and rank 0 writes the same files a single-process model writes
     * (the seed's {@code merge_tensor_parallel}); otherwise every rank writes its part to {@code
     * adapter_model.tpRR-of-TT.safetensors} and rank 0 writes the config. A single-process model
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
        checkNotUnloaded();
        LoRACheckpoint.save(this, dir, mergeTensorParallel, getAdapterNames());
    }

    /**
     * Writes the selected adapters (Hugging Face's {@code selected_adapters}): {@value
     * #DEFAULT_ADAPTER}'s config and weights at the root of {@code dir}, every other in {@code
     * dir/<name>/}, in one replacement of the directory, all or nothing. The directory's other
     * entries stay, as Hugging Face's {@code save_pretrained} leaves them: without {@value
     * #DEFAULT_ADAPTER} among the selected the root's adapter files are kept, and the subfolder
     * of an adapter not selected (or deleted since) is left, so {@link #fromPretrained} would
     * restore it; remove it yourself to drop it.
     *
     * @param dir the directory; created when missing
     * @param selectedAdapters the adapters to write, at least one
     * @throws IOException if writing fails; the directory is then as it was
     * @throws IllegalArgumentException if a name is unknown or none is given, or {@code dir} is a
     *     file
     */
    public void savePretrained(Path dir, List<String> selectedAdapters) throws IOException {
        checkNotUnloaded();
        if (selectedAdapters.isEmpty()) {
            throw new IllegalArgumentException(
                    "select at least one adapter of " + configs.keySet() + " to save");
        }
        selectedAdapters.forEach(this::checkKnown);
        LoRACheckpoint.save(this, dir, true, List.copyOf(selectedAdapters));
    }

    /**
     * Wraps a base model with the LoRA adapters saved in a directory, in the Hugging Face PEFT
     * format, with the seed's {@code lora_config.json}, or as PaddleNLP writes them. The root's
     * adapter becomes {@value #DEFAULT_ADAPTER}, the only active one; every immediate subfolder
     * holding a LoRA config (a save of several adapters, {@link AdapterNames#subfolders}; never a
     * {@code checkpoint-<step>}) is added under its folder's name, inactive.
     *
     * <p>Every key and shape of the files is checked against the model before the model is
     * touched: a missing key, an unexpected key or a shape mismatch fails with the key's name and
     * leaves the base model as it was. Adapter weights are converted to the config's dtype.
     *
     * <p>A tensor-parallel model (every rank calls this) reads a merged file and cuts out each
     * rank's part, or reads its own file of a set saved with the same degree; a set of another
     * degree is refused. It takes the root's adapter only.
     *
     * <p>A save of the directory that was killed is first finished or undone ({@link
     * AtomicDirectory#recover}).
     *
     * @param model the base model, initialised with its weights
     * @param dir the adapter directory
     * @return the adapted model, in training mode (call {@link #eval()} for inference)
     * @throws IOException if a file cannot be read, or the weights file is missing or corrupt
     * @throws IllegalArgumentException if an adapter does not fit the model
     */
    public static LoRAModel fromPretrained(Block model, Path dir) throws IOException {
        AtomicDirectory.recover(dir); // a save killed mid-swap is finished or undone first
        LoRAConfig config = LoRAConfig.fromPretrained(dir);
        LoRAModel lora = LoRACheckpoint.load(model, config, dir);
        if (Shardings.degree(model) > 1) {
            return lora;
        }
        try {
            List<String> named =
                    AdapterNames.subfolders(dir, LoRAConfig.SEED_CONFIG_FILE, LoRAConfig.PEFT_TYPE);
            for (String name : named) {
                AdapterNames.loadSubfolder("adapter", dir, name, lora::loadAdapter);
            }
        } catch (IOException | RuntimeException e) {
            lora.unload();
            throw e;
        }
        return lora;
    }

    private void checkNotUnloaded() {
        if (unloaded) {
            throw new IllegalStateException(
                    "this LoRAModel was unloaded; use the block mergeAndUnload() returned");
        }
    }
}
