package org.peft4j.core;

import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import org.peft4j.core.io.AtomicDirectory;
import org.peft4j.core.tree.BlockPaths;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A base model with an adapter, itself a DJL {@link Block}: it drops into {@code Model.setBlock},
 * {@code Trainer} and {@code Predictor} unchanged, and its forward pass is the base model's forward
 * pass with the adapter in it.
 *
 * <p>The base model is this block's only child ({@code base_model}); paths reported by this class
 * are logical paths inside the base model (see {@link BlockPaths}), the paths that target patterns
 * match and that saved adapters use after their {@code base_model.model.} prefix.
 */
public abstract class PeftModel extends AbstractBlock {

    /** The weights file of the Hugging Face PEFT format. */
    public static final String WEIGHTS_FILE = "adapter_model.safetensors";

    /** The prefix Hugging Face PEFT puts before a base-model path in saved keys. */
    public static final String KEY_PREFIX = "base_model.model.";

    private static final byte VERSION = 1;

    /**
     * The files an adapter directory may hold, of peft4j, Hugging Face PEFT or PaddleNLP, any
     * tensor-parallel shards included: what a save replaces.
     */
    private static final Pattern ADAPTER_FILE =
            Pattern.compile(
                    "(adapter|lora|prefix)_config\\.json"
                            + "|(adapter_model|prefix_encoder)(\\.tp\\d+-of-\\d+)?\\.safetensors"
                            + "|adapter_model\\.bin"
                            + "|(lora|prefix)_model_state(\\.tp\\d+)?\\.pdparams");

    private final Block baseModel;

    /**
     * Wraps a base model.
     *
     * @param baseModel the model to adapt; it becomes this block's child
     * @throws IllegalArgumentException if the base model is itself a {@code PeftModel}
     */
    protected PeftModel(Block baseModel) {
        super(VERSION);
        if (baseModel instanceof PeftModel) {
            throw new IllegalArgumentException(
                    "the base model is already a "
                            + baseModel.getClass().getSimpleName()
                            + "; wrap its getBaseModel() or merge it first");
        }
        this.baseModel = addChildBlock("base_model", baseModel);
    }

    /**
     * Returns the wrapped model, with the adapter's layers inside it.
     *
     * @return the base model
     */
    public final Block getBaseModel() {
        return baseModel;
    }

    /**
     * Returns the adapter's config.
     *
     * @return the config
     */
    public abstract PeftConfig getPeftConfig();

    /**
     * Writes the adapter in the Hugging Face PEFT format ({@code adapter_config.json}, {@code
     * adapter_model.safetensors} and the method's own files), all or nothing: the directory is
     * replaced as a whole ({@link AtomicDirectory}), so a save killed at any moment leaves the old
     * adapter or the new one, never new weights beside an old config, once the next save or load
     * has recovered it.
     *
     * <p>What is replaced, and what stays: every adapter file of the directory ({@link
     * #isAdapterFile}: configs, weights, shards of any degree, an encoder) is replaced, so that
     * none of an earlier save stays beside the new one; every other entry (a {@code README.md}, a
     * training run's {@code metrics.csv} and {@code checkpoint-N}) is kept as it was, as Hugging
     * Face's {@code save_pretrained} leaves it. To replace a directory entirely, or to refuse one
     * that is not empty, decide before saving (the command line refuses it without {@code
     * --overwrite}).
     *
     * @param dir the directory; created when missing
     * @throws IOException if writing fails; the directory is then as it was, and the message names
     *     the file
     * @throws IllegalArgumentException if {@code dir} is a file
     */
    public abstract void savePretrained(Path dir) throws IOException;

    /**
     * Returns whether a file name is one of an adapter directory's own files, which a save
     * replaces: {@code adapter_config.json}, {@code lora_config.json}, {@code prefix_config.json},
     * {@code adapter_model.safetensors} and {@code prefix_encoder.safetensors} with their {@code
     * .tpRR-of-TT} shards, and the pickled weights of Hugging Face PEFT ({@code adapter_model.bin})
     * and PaddleNLP ({@code lora_model_state.pdparams}, {@code prefix_model_state.pdparams}).
     *
     * @param name a file name, without directory
     * @return whether a save of an adapter replaces it
     */
    public static boolean isAdapterFile(String name) {
        return ADAPTER_FILE.matcher(name).matches();
    }

    /**
     * Opens a scope in which the model computes exactly what the base model computes.
     *
     * @return the scope; closing it re-enables the adapter
     */
    public abstract AdapterScope disableAdapter();

    /**
     * Returns the adapter's blocks that live beside the base model rather than inside it (a prefix
     * encoder, say), by the name their parameter paths start with.
     *
     * @return an ordered map; empty for methods whose layers sit inside the base model (LoRA)
     */
    protected Map<String, Block> getAdapterBlocks() {
        return Collections.emptyMap();
    }

    /**
     * Lists every parameter of the base model and adapter by logical path: base-model parameters by
     * their path in the base model, those of {@link #getAdapterBlocks()} under their block's name.
     *
     * @return an ordered, unmodifiable map; shared parameters appear once
     */
    public final Map<String, Parameter> getNamedParameters() {
        Map<String, Parameter> all = new LinkedHashMap<>(BlockPaths.parameters(baseModel));
        getAdapterBlocks()
                .forEach(
                        (name, block) ->
                                BlockPaths.parameters(block)
                                        .forEach((path, p) -> all.put(name + '.' + path, p)));
        return Collections.unmodifiableMap(all);
    }

    /**
     * Lists the parameters that require a gradient, the ones an optimizer updates.
     *
     * @return an ordered, unmodifiable map from logical path to parameter
     */
    public Map<String, Parameter> getTrainableParameters() {
        Map<String, Parameter> out = new LinkedHashMap<>();
        getNamedParameters()
                .forEach(
                        (path, parameter) -> {
                            if (parameter.requiresGradient()) {
                                out.put(path, parameter);
                            }
                        });
        return Collections.unmodifiableMap(out);
    }

    /**
     * Counts the elements of the trainable parameters.
     *
     * @return the number of trainable scalars
     * @throws IllegalStateException if a parameter's shape is not yet known
     */
    public long countTrainableParameters() {
        return count(getTrainableParameters());
    }

    /**
     * Counts the elements of all parameters, base and adapter.
     *
     * @return the number of scalars
     * @throws IllegalStateException if a parameter's shape is not yet known
     */
    public long countAllParameters() {
        return count(getNamedParameters());
    }

    /**
     * Returns the line that {@link #printTrainableParameters()} prints, in Hugging Face's format.
     *
     * @return for example {@code "trainable params: 4,194,304 || all params: 6,742,609,920 ||
     *     trainable%: 0.0622"}
     */
    public String trainableParametersSummary() {
        long trainable = countTrainableParameters();
        long all = countAllParameters();
        double percent = all == 0 ? 0 : 100.0 * trainable / all;
        return String.format(
                Locale.ROOT,
                "trainable params: %,d || all params: %,d || trainable%%: %.4f",
                trainable,
                all,
                percent);
    }

    /** Prints {@link #trainableParametersSummary()} to standard output. */
    public void printTrainableParameters() {
        System.out.println(trainableParametersSummary()); // NOPMD: the method's purpose
    }

    private static long count(Map<String, Parameter> parameters) {
        long total = 0;
        for (Map.Entry<String, Parameter> entry : parameters.entrySet()) {
            Shape shape = entry.getValue().getShape();
            if (shape == null) {
                throw new IllegalStateException(
                        "parameter "
                                + entry.getKey()
                                + " has no shape yet; initialize the model before counting");
            }
            total += shape.size();
        }
        return total;
    }

    /**
     * Wraps a base model with the adapter saved in a directory, whatever its method. A save of the
     * directory that was killed is first finished or undone ({@link AtomicDirectory#recover}).
     *
     * @param base the base model, initialised with its weights
     * @param dir an adapter directory ({@code adapter_config.json} or a seed config file, and the
     *     weights)
     * @return the adapted model
     * @throws IOException if the adapter cannot be read
     * @throws IllegalArgumentException if the adapter does not fit the model; the message names the
     *     key or path
     */
    public static PeftModel fromPretrained(Block base, Path dir) throws IOException {
        AtomicDirectory.recover(dir); // a save killed mid-swap is finished or undone first
        PeftConfig config = PeftConfig.fromPretrained(dir);
        return PeftMethods.forType(config.getPeftType(), dir.toString()).fromPretrained(base, dir);
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore parameterStore,
            NDList inputs,
            boolean training,
            PairList<String, Object> params) {
        return baseModel.forward(parameterStore, inputs, training, params);
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return baseModel.getOutputShapes(inputShapes);
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(
            NDManager manager, DataType dataType, Shape... inputShapes) {
        baseModel.initialize(manager, dataType, inputShapes);
    }
}
