package org.peft4j.prefix;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;


import org.peft4j.core.AdapterNames;
import org.peft4j.core.PeftConfig;
import org.peft4j.core.PeftModel;
import org.peft4j.core.io.AtomicDirectory;
import org.peft4j.core.io.NativeArrays;
import org.peft4j.core.io.paddle.StagedWeights;
import org.peft4j.core.lm.CausalLanguageModel;
import org.peft4j.core.parallel.ShardGroup;
import org.peft4j.core.parallel.ShardedCheckpoint;
import org.peft4j.core.parallel.Sharding;
import org.peft4j.core.parallel.Shardings;
import org.peft4j.core.tree.BlockPaths;
import org.peft4j.prefix.paddle.PaddlePrefixFiles;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Saving and loading prefixes.
 *
 * <ul>
 *   <li>{@code adapter_model.safetensors}: {@code prompt_embeddings [P, 2 L kvHeads headDim]}, the
 *       encoder's output, as Hugging Face PEFT saves it;
 *   <li>{@code prefix_encoder.safetensors} (with a projection only): the encoder's own weights
 *       ({@code embedding.weight}, {@code transform.0.weight}, ...), to resume training;
 *   <li>{@code adapter_config.json} (Hugging Face's fields) and {@code prefix_config.json} (the
 *       seed's).
 * </ul>
 *
 * <p>A prefix of a model split across ranks saves merged (the same files, each rank's heads
 * gathered) or one file per rank, as {@link ShardedCheckpoint} does for LoRA. A save replaces the
 * directory's adapter files as a whole ({@link PeftModel#savePretrained}).
 */
final class PrefixCheckpoint {

    static final String PROMPT_EMBEDDINGS = "prompt_embeddings";
    static final String ENCODER_FILE = "prefix_encoder.safetensors";

    private static final String HINT =
            "its config (prefix tokens, layers, key/value heads, head size: the prefix is [prefix"
                    + " tokens, 2 * layers * kv heads * head dim])";

    private static final Logger logger = LoggerFactory.getLogger(PrefixCheckpoint.class);

    private PrefixCheckpoint() {}

    /**
     * Saves the named prefixes into a staging directory that then replaces {@code target} as a
     * whole: the default one at its root, every other in the subfolder of its name. The root's
     * adapter files are replaced; other entries, subfolders this save does not write among them,
     * stay.
     */
    static void save(PrefixModelForCausalLM model, Path target, boolean merge, List<String> names)
            throws IOException {
        ShardGroup group = model.getShardGroup();
        AtomicDirectory.replace(
                target,
                name -> !PeftModel.isAdapterFile(name),
                group.getRank(),
                group::barrier,
                dir -> {
                    for (String name : names) {
                        Path into = dir;
                        if (!PrefixModelForCausalLM.DEFAULT_ADAPTER.equals(name)) {
                            into = Files.createDirectories(dir.resolve(name));
                        }
                        write(model.getPrefixEncoder(name), model.getPeftConfig(name), into, merge);
                    }
                });
    }

    private static void write(PrefixEncoder encoder, PrefixConfig config, Path dir, boolean merge)
            throws IOException {
        PrefixConfig saved =
                merge || encoder.getTensorParallelDegree() == 1
                        ? config.toBuilder().optTensorParallelDegree(1).build()
                        : config;
        // prefix_config.json and adapter_config.json
        ShardedCheckpoint.Companion configs = () -> saved.savePretrained(dir);
        NDArray table = encoder.getEmbedding().getArray();
        try (NDManager scratch = table.getManager().newSubManager()) {
            NDArray anchor = scratch.zeros(new Shape(1));
            NDArray prompt =
                    encoder.forward(new ParameterStore(scratch, false), new NDList(anchor), false)
                            .head();
            if (prompt.getDataType() != config.getDtype()) {
                prompt = prompt.toType(config.getDtype(), false);
            }
            Map<String, Sharding> outputSharding = new LinkedHashMap<>();
            if (encoder.outputSharding() != null) {
                outputSharding.put(PROMPT_EMBEDDINGS, encoder.outputSharding());
            }
            ShardedCheckpoint.save(
                    dir,
                    PeftModel.WEIGHTS_FILE,
                    Map.of(PROMPT_EMBEDDINGS, prompt),
                    outputSharding,
                    merge,
                    encoder.hasProjection() ? () -> {} : configs);
        }
        if (encoder.hasProjection()) {
            Map<String, Parameter> own = BlockPaths.parameters(encoder);
            Map<String, NDArray> tensors = new LinkedHashMap<>();
            own.forEach((path, p) -> tensors.put(path, p.getArray()));
            ShardedCheckpoint.save(
                    dir, ENCODER_FILE, tensors, Shardings.of(encoder, own), merge, configs);
        }
    }

    static PrefixModelForCausalLM load(CausalLanguageModel base, Path dir) throws IOException {
        PrefixConfig config = PrefixConfig.fromPretrained(dir);
        config.checkFits(base);
        // PaddleNLP's files are read through their Hugging Face form, checked as HF's are
        try (NDManager scratch = NDManager.newBaseManager(Device.cpu());
                StagedWeights weights = PaddlePrefixFiles.stage(dir, config, scratch)) {
            return load(base, config, weights.getDir());
        }
    }

    private static PrefixModelForCausalLM load(
            CausalLanguageModel base, PrefixConfig config, Path dir) throws IOException {
        boolean trainableProjection = trainableProjection(config, dir);
        PrefixConfig effective = effective(config, dir, trainableProjection);
        // wrapping freezes the base model; a failed load puts its trainability back
        Map<Parameter, Boolean> trainable = trainability(base);
        PrefixModelForCausalLM model = new PrefixModelForCausalLM(base, effective);
        try {
            copyWeights(model.getPrefixEncoder(), dir, trainableProjection);
        } catch (IOException | RuntimeException e) {
            trainable.forEach((p, was) -> p.freeze(!was));
            throw e;
        }
        return model;
    }

    /**
     * Loads the root of a directory as the default prefix and every subfolder that holds a named
     * prefix as that prefix; a failure of any leaves the base model's trainability as it was.
     */
    static PrefixModelForCausalLM loadSet(CausalLanguageModel base, Path dir) throws IOException {
        List<String> named = namedSubfolders(dir);
        Map<Parameter, Boolean> trainable = trainability(base);
        PrefixModelForCausalLM model = load(base, dir);
        if (named.isEmpty()) {
            return model;
        }
        if (model.getShardGroup().getDegree() > 1) {
            logger.warn(
                    "{}: the named prefixes {} are not loaded: named prefixes on a tensor-parallel"
                            + " model are not supported yet",
                    dir,
                    named);
            return model;
        }
        try {
            for (String name : named) {
                AdapterNames.loadSubfolder(
                        "prefix", dir, name, (sub, n) -> loadNamed(model, sub, n));
            }
        } catch (IOException | RuntimeException e) {
            trainable.forEach((p, was) -> p.freeze(!was));
            for (String name : model.getAdapterNames()) {
                model.getPrefixEncoder(name).getParameters().values().forEach(Parameter::close);
            }
            throw e;
        }
        return model;
    }

    /**
     * Reads a prefix directory into a new encoder and adds it to the model under a name already
     * checked; nothing changes in the model unless every check and read succeeds.
     */
    static void loadNamed(PrefixModelForCausalLM model, Path dir, String name) throws IOException {
        CausalLanguageModel base = (CausalLanguageModel) model.getBaseModel();
        PrefixConfig config = PrefixConfig.fromPretrained(dir);
        config.checkFits(base);
        try (NDManager scratch = NDManager.newBaseManager(Device.cpu());
                StagedWeights weights = PaddlePrefixFiles.stage(dir, config, scratch)) {
            Path files = weights.getDir();
            boolean trainableProjection = trainableProjection(config, files);
            PrefixConfig fitted =
                    PrefixModelForCausalLM.fitted(
                            base, effective(config, files, trainableProjection));
            PrefixEncoder encoder = PrefixModelForCausalLM.newEncoder(base, fitted);
            if (!encoder.isInitialized()) {
                throw new IllegalStateException(
                        "the base model has no weights yet; initialize it before loading the"
                                + " prefix \""
                                + name
                                + "\"");
            }
            try {
                copyWeights(encoder, files, trainableProjection);
            } catch (IOException | RuntimeException e) {
                encoder.getParameters().values().forEach(Parameter::close);
                throw e;
            }
            model.addPrefix(name, fitted, encoder);
        }
    }

    /** The named prefixes of a saved set, beside its default one ({@link AdapterNames}). */
    static List<String> namedSubfolders(Path dir) throws IOException {
        return AdapterNames.subfolders(dir, PrefixConfig.SEED_CONFIG_FILE, PrefixConfig.PEFT_TYPE);
    }

    private static Map<Parameter, Boolean> trainability(CausalLanguageModel base) {
        Map<Parameter, Boolean> trainable = new IdentityHashMap<>();
        base.getParameters().values().forEach(p -> trainable.put(p, p.requiresGradient()));
        return trainable;
    }

    /** Refuses a directory without the prefix; says whether the projection's weights are there. */
    private static boolean trainableProjection(PrefixConfig config, Path dir) throws IOException {
        if (!Files.isRegularFile(dir.resolve(PeftModel.WEIGHTS_FILE))
                && ShardedCheckpoint.shardDegrees(dir, PeftModel.WEIGHTS_FILE).isEmpty()) {
            throw new NoSuchFileException(
                    dir.resolve(PeftModel.WEIGHTS_FILE).toString(),
                    null,
                    "missing: it holds the prefix (prompt_embeddings)");
        }
        return config.isPrefixProjection()
                && (Files.isRegularFile(dir.resolve(ENCODER_FILE))
                        || !ShardedCheckpoint.shardDegrees(dir, ENCODER_FILE).isEmpty());
    }

    /** The config the loaded encoder takes: without a projection whose weights are missing. */
    private static PrefixConfig effective(
            PrefixConfig config, Path dir, boolean trainableProjection) {
        if (config.isPrefixProjection() && !trainableProjection) {
            logger.info(
                    "{}: no {}; the saved prefix (the projection's output) becomes a fixed table",
                    dir,
                    ENCODER_FILE);
            return config.toBuilder().withoutProjection().build();
        }
        return config;
    }

    private static void copyWeights(PrefixEncoder encoder, Path dir, boolean trainableProjection)
            throws IOException {
        Map<String, Parameter> targets;
        Map<String, Sharding> shardings;
        String file;
        if (trainableProjection) {
            targets = BlockPaths.parameters(encoder);
            shardings = Shardings.of(encoder, targets);
            file = ENCODER_FILE;
        } else {
            // the table is the prefix itself, split like the encoder's output
            targets = Map.of(PROMPT_EMBEDDINGS, encoder.getEmbedding());
            shardings = new LinkedHashMap<>();
            if (encoder.outputSharding() != null) {
                shardings.put(PROMPT_EMBEDDINGS, encoder.outputSharding());
            }
            file = PeftModel.WEIGHTS_FILE;
        }
        Map<String, Shape> shapes = new LinkedHashMap<>();
        targets.forEach((key, p) -> shapes.put(key, p.getArray().getShape()));
        NDArray table = encoder.getEmbedding().getArray();
        try (NDManager scratch = table.getManager().newSubManager()) {
            Map<String, NDArray> loaded =
                    ShardedCheckpoint.load(dir, file, shapes, shardings, scratch, HINT);
            loaded.forEach(
                    (key, value) -> NativeArrays.copyInto(targets.get(key).getArray(), value));
        }
    }
}
