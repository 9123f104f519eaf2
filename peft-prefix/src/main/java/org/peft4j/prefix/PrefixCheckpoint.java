package org.peft4j.prefix;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;

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
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
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

    /** Saves into a staging directory that then replaces {@code target} as a whole. */
    static void save(PrefixModelForCausalLM model, Path target, boolean merge) throws IOException {
        ShardGroup group = model.getShardGroup();
        AtomicDirectory.replace(
                target,
                name -> !PeftModel.isAdapterFile(name),
                group.getRank(),
                group::barrier,
                dir -> write(model, dir, merge));
    }

    private static void write(PrefixModelForCausalLM model, Path dir, boolean merge)
            throws IOException {
        PrefixEncoder encoder = model.getPrefixEncoder();
        PrefixConfig config = model.getPeftConfig();
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
        if (!Files.isRegularFile(dir.resolve(PeftModel.WEIGHTS_FILE))
                && ShardedCheckpoint.shardDegrees(dir, PeftModel.WEIGHTS_FILE).isEmpty()) {
            throw new NoSuchFileException(
                    dir.resolve(PeftModel.WEIGHTS_FILE).toString(),
                    null,
                    "missing: it holds the prefix (prompt_embeddings)");
        }
        boolean trainableProjection =
                config.isPrefixProjection()
                        && (Files.isRegularFile(dir.resolve(ENCODER_FILE))
                                || !ShardedCheckpoint.shardDegrees(dir, ENCODER_FILE).isEmpty());
        PrefixConfig effective = config;
        if (config.isPrefixProjection() && !trainableProjection) {
            logger.info(
                    "{}: no {}; the saved prefix (the projection's output) becomes a fixed table",
                    dir,
                    ENCODER_FILE);
            effective = config.toBuilder().withoutProjection().build();
        }
        // wrapping freezes the base model; a failed load puts its trainability back
        Map<Parameter, Boolean> trainable = new IdentityHashMap<>();
        base.getParameters().values().forEach(p -> trainable.put(p, p.requiresGradient()));
        PrefixModelForCausalLM model = new PrefixModelForCausalLM(base, effective);
        try {
            copyWeights(model, dir, trainableProjection);
        } catch (IOException | RuntimeException e) {
            trainable.forEach((p, was) -> p.freeze(!was));
            throw e;
        }
        return model;
    }

    private static void copyWeights(
            PrefixModelForCausalLM model, Path dir, boolean trainableProjection)
            throws IOException {
        PrefixEncoder encoder = model.getPrefixEncoder();
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
