package org.peft4j.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;

import org.peft4j.core.AdapterScope;
import org.peft4j.core.PeftConfig;
import org.peft4j.core.PeftModel;
import org.peft4j.core.io.AtomicDirectory;
import org.peft4j.core.parallel.Shardings;
import org.peft4j.core.tree.BlockReplacer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

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

    private final LoRAConfig config;
    private final Map<String, LoRALinear> layers;
    private boolean training = true;
    private boolean unloaded;

    /**
     * Adapts the layers of a model that the config targets. A config whose {@code
     * tensor_parallel_degree} disagrees with the model's is replaced by a copy with the model's,
     * with a warning ({@link PeftConfig#forModelDegree}).
     *
     * @param model the base model; initialised or not
     * @param config the adapter's config
     * @throws IllegalArgumentException if the targets match nothing, match a block that is not a
     *     {@code Linear}, or a matched layer cannot be replaced inside its parent
     */
    public LoRAModel(Block model, LoRAConfig config) {
        super(model);
        this.config =
                PeftConfig.forModelDegree(
                        config,
                        Shardings.degree(model),
                        degree -> config.toBuilder().optTensorParallelDegree(degree).build());
        Map<String, Linear> targets = LoRATargets.find(model, config);
        Map<String, LoRALinear> adapted = new LinkedHashMap<>();
        for (Map.Entry<String, Linear> target : targets.entrySet()) {
            LoRALinear layer =
                    LoRALinear.builder(target.getValue())
                            .setR(config.getR())
                            .optScaling(config.getScaling())
                            .optDropout(config.getLoraDropout())
                            .optInit(config.getInitLoraWeights())
                            .optDtype(config.getDtype())
                            .optPath(target.getKey())
                            .build();
            BlockReplacer.replace(model, target.getKey(), layer);
            adapted.put(target.getKey(), layer);
        }
        this.layers = Collections.unmodifiableMap(adapted);
        markOnlyLoRAAsTrainable();
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

    /** {@inheritDoc} */
    @Override
    public LoRAConfig getPeftConfig() {
        return config;
    }

    /**
     * Returns the adapted layers.
     *
     * @return an ordered, unmodifiable map from logical path to layer
     */
    public Map<String, LoRALinear> getLoRALayers() {
        return layers;
    }

    /**
     * Freezes every parameter except the adapter's: {@code lora_A} and {@code lora_B} of each
     * adapted layer, the biases that {@code bias}/{@code trainable_bias} names, and the parameters
     * whose paths match {@code trainable_modules}. Final because the constructor calls it: an
     * override would run before its class's fields are set.
     */
    public final void markOnlyLoRAAsTrainable() {
        checkNotUnloaded();
        Map<String, Parameter> trainable = adapterState();
        for (Parameter parameter : getNamedParameters().values()) {
            parameter.freeze(!trainable.containsValue(parameter));
        }
    }

    /**
     * Returns the parameters an adapter file holds, by the logical path they are saved under:
     * {@code <layer>.lora_A.weight} and {@code <layer>.lora_B.weight} for each adapted layer, then
     * the biases and {@code trainable_modules} parameters that train with the adapter, under their
     * own paths.
     *
     * @return an ordered, unmodifiable map; the saved key is {@code base_model.model.} + path
     */
    public final Map<String, Parameter> adapterState() {
        Map<String, Parameter> state = new LinkedHashMap<>();
        for (Map.Entry<String, LoRALinear> layer : layers.entrySet()) {
            state.put(layer.getKey() + ".lora_A.weight", layer.getValue().getLoraA());
            state.put(layer.getKey() + ".lora_B.weight", layer.getValue().getLoraB());
        }
        List<Parameter> loraBiases = new ArrayList<>();
        for (LoRALinear layer : layers.values()) {
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
        if (config.isMergeWeights()) {
            unmerge();
        }
    }

    /** Enters evaluation mode: with {@code merge_weights}, merges the adapters (safely). */
    public void eval() {
        checkNotUnloaded();
        training = false;
        if (config.isMergeWeights()) {
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
     * Returns whether the adapters are merged into the base weights.
     *
     * @return true when every adapted layer is merged
     */
    public boolean isMerged() {
        return layers.values().stream().allMatch(LoRALinear::isMerged);
    }

    /** Merges every adapter into its base weight, without checking the result. */
    public void merge() {
        merge(false);
    }

    /**
     * Merges every adapter into its base weight.
     *
     * @param safe whether to refuse, leaving that weight unchanged, a merge that gives NaN or
     *     infinity
     * @throws IllegalStateException if {@code safe} and a merged weight is not finite; layers
     *     merged before it stay merged, so call {@link #unmerge()} to return to a clean state
     */
    public void merge(boolean safe) {
        checkNotUnloaded();
        for (LoRALinear layer : layers.values()) {
            layer.merge(safe);
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
        boolean wasMerged = isMerged();
        if (wasMerged) {
            unmerge();
        }
        layers.values().forEach(layer -> layer.setEnabled(false));
        return () -> {
            layers.values().forEach(layer -> layer.setEnabled(true));
            if (wasMerged) {
                merge();
            }
        };
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
     * Puts the original {@link Linear} layers back without merging, dropping the adapters. This
     * model is unusable afterwards.
     *
     * @return the base model with its original weights (unmerged first if merged)
     */
    public Block unload() {
        checkNotUnloaded();
        for (Map.Entry<String, LoRALinear> entry : layers.entrySet()) {
            LoRALinear layer = entry.getValue();
            Linear original = layer.getBaseLayer();
            restoreInputShapes(layer, original);
            BlockReplacer.replace(getBaseModel(), entry.getKey(), original);
            for (Parameter parameter : layer.adapterParameters()) {
                parameter.close();
            }
        }
        unloaded = true;
        return getBaseModel();
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
     * <p>A tensor-parallel model saves merged, as {@code savePretrained(dir, true)} does.
     */
    @Override
    public void savePretrained(Path dir) throws IOException {
        savePretrained(dir, true);
    }

    /**
     * Writes the adapter. On a tensor-parallel model (layers of peft-parallel) this is a collective
     * that every rank calls: merged, the split tensors are gathered and rank 0 writes the same
     * files a single-process model writes (the seed's {@code merge_tensor_parallel}); otherwise
     * every rank writes its part to {@code adapter_model.tpRR-of-TT.safetensors} and rank 0 writes
     * the config. A single-process model ignores the flag.
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
        LoRACheckpoint.save(this, dir, mergeTensorParallel);
    }

    /**
     * Wraps a base model with the LoRA adapter saved in a directory, in the Hugging Face PEFT
     * format or with the seed's {@code lora_config.json}.
     *
     * <p>Every key and shape of the file is checked against the model before the model is touched:
     * a missing key, an unexpected key or a shape mismatch fails with the key's name and leaves the
     * base model as it was. Adapter weights are converted to the config's dtype.
     *
     * <p>A tensor-parallel model (every rank calls this) reads a merged file and cuts out each
     * rank's part, or reads its own file of a set saved with the same degree; a set of another
     * degree is refused.
     *
     * <p>A save of the directory that was killed is first finished or undone ({@link
     * AtomicDirectory#recover}).
     *
     * @param model the base model, initialised with its weights
     * @param dir the adapter directory
     * @return the adapted model, in training mode (call {@link #eval()} for inference)
     * @throws IOException if a file cannot be read, or the weights file is missing or corrupt
     * @throws IllegalArgumentException if the adapter does not fit the model
     */
    public static LoRAModel fromPretrained(Block model, Path dir) throws IOException {
        AtomicDirectory.recover(dir); // a save killed mid-swap is finished or undone first
        LoRAConfig config = LoRAConfig.fromPretrained(dir);
        return LoRACheckpoint.load(model, config, dir);
    }

    private void checkNotUnloaded() {
        if (unloaded) {
            throw new IllegalStateException(
                    "this LoRAModel was unloaded; use the block mergeAndUnload() returned");
        }
    }
}
