package org.peft4j.prefix;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import org.peft4j.core.PeftModel;
import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.io.NativeArrays;
import org.peft4j.core.io.SafetensorsReader;
import org.peft4j.core.io.SafetensorsWriter;
import org.peft4j.core.io.TensorInfo;
import org.peft4j.core.lm.CausalLanguageModel;
import org.peft4j.core.tree.BlockPaths;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

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
 */
final class PrefixCheckpoint {

    static final String PROMPT_EMBEDDINGS = "prompt_embeddings";
    static final String ENCODER_FILE = "prefix_encoder.safetensors";

    private static final Logger logger = LoggerFactory.getLogger(PrefixCheckpoint.class);

    private PrefixCheckpoint() {}

    static void save(PrefixModelForCausalLM model, Path dir) throws IOException {
        PrefixConfig config = model.getPeftConfig();
        PrefixEncoder encoder = model.getPrefixEncoder();
        NDArray table = encoder.getEmbedding().getArray();
        try (NDManager scratch = table.getManager().newSubManager()) {
            NDArray anchor = scratch.zeros(new Shape(1));
            NDArray prompt =
                    encoder.forward(new ParameterStore(scratch, false), new NDList(anchor), false)
                            .head();
            if (prompt.getDataType() != config.getDtype()) {
                prompt = prompt.toType(config.getDtype(), false);
            }
            Map<String, NDArray> weights = new LinkedHashMap<>();
            weights.put(PROMPT_EMBEDDINGS, prompt);
            SafetensorsWriter.write(dir.resolve(PeftModel.WEIGHTS_FILE), weights);
        }
        if (encoder.hasProjection()) {
            Map<String, NDArray> own = new LinkedHashMap<>();
            BlockPaths.parameters(encoder).forEach((path, p) -> own.put(path, p.getArray()));
            SafetensorsWriter.write(dir.resolve(ENCODER_FILE), own);
        }
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        AtomicFiles.writeString(
                dir.resolve(PrefixConfig.SEED_CONFIG_FILE),
                json.writeValueAsString(config.toSeedJson()) + '\n');
        config.savePretrained(dir);
    }

    static PrefixModelForCausalLM load(CausalLanguageModel base, Path dir) throws IOException {
        PrefixConfig config = PrefixConfig.fromPretrained(dir);
        config.checkFits(base);
        Path weights = dir.resolve(PeftModel.WEIGHTS_FILE);
        if (!Files.isRegularFile(weights)) {
            throw new NoSuchFileException(
                    weights.toString(), null, "missing: it holds the prefix (prompt_embeddings)");
        }
        Path encoderFile = dir.resolve(ENCODER_FILE);
        boolean trainableProjection =
                config.isPrefixProjection() && Files.isRegularFile(encoderFile);
        PrefixConfig effective = config;
        if (config.isPrefixProjection() && !trainableProjection) {
            logger.info(
                    "{}: no {}; the saved prefix (the projection's output) becomes a fixed table",
                    dir,
                    ENCODER_FILE);
            effective = withoutProjection(config);
        }
        try (SafetensorsReader reader = SafetensorsReader.open(weights)) {
            Shape expected = new Shape(config.getNumPrefixTokens(), config.getPrefixWidth());
            checkOnly(reader, Map.of(PROMPT_EMBEDDINGS, expected));
            PrefixModelForCausalLM model = new PrefixModelForCausalLM(base, effective);
            if (trainableProjection) {
                loadEncoder(model.getPrefixEncoder(), encoderFile);
            } else {
                copy(reader, PROMPT_EMBEDDINGS, model.getPrefixEncoder().getEmbedding());
            }
            return model;
        }
    }

    private static PrefixConfig withoutProjection(PrefixConfig config) {
        return PrefixConfig.builder()
                .setNumPrefixTokens(config.getNumPrefixTokens())
                .setModelSizes(
                        config.getNumHiddenLayers(),
                        config.getNumAttentionHeads(),
                        config.getNumKeyValueHeads(),
                        config.getHiddenSize())
                .optHeadDim(config.getHeadDim())
                .optPrefixDropout(config.getPrefixDropout())
                .optDtype(config.getDtype())
                .optTaskType(config.getTaskType())
                .optBaseModelNameOrPath(config.getBaseModelNameOrPath())
                .optTensorParallelDegree(config.getTensorParallelDegree())
                .build();
    }

    private static void loadEncoder(PrefixEncoder encoder, Path file) throws IOException {
        Map<String, Parameter> parameters = BlockPaths.parameters(encoder);
        Map<String, Shape> expected = new LinkedHashMap<>();
        parameters.forEach((path, p) -> expected.put(path, p.getShape()));
        try (SafetensorsReader reader = SafetensorsReader.open(file)) {
            checkOnly(reader, expected);
            for (Map.Entry<String, Parameter> entry : parameters.entrySet()) {
                copy(reader, entry.getKey(), entry.getValue());
            }
        }
    }

    /** Checks that the file holds exactly these tensors with these shapes. */
    private static void checkOnly(SafetensorsReader reader, Map<String, Shape> expected) {
        Map<String, TensorInfo> found = reader.getTensors();
        StringBuilder problems = new StringBuilder();
        for (Map.Entry<String, Shape> entry : expected.entrySet()) {
            TensorInfo info = found.get(entry.getKey());
            if (info == null) {
                problems.append(" missing key ")
                        .append(entry.getKey())
                        .append(" (expected shape ")
                        .append(entry.getValue())
                        .append(");");
            } else if (!info.shape().equals(entry.getValue())) {
                problems.append(" key ")
                        .append(entry.getKey())
                        .append(" has shape ")
                        .append(info.shape())
                        .append(" but the model needs ")
                        .append(entry.getValue())
                        .append(" [prefix tokens, 2 * layers * kv heads * head dim];");
            }
        }
        Set<String> extra = new java.util.TreeSet<>(found.keySet());
        extra.removeAll(expected.keySet());
        for (String key : extra) {
            problems.append(" unexpected key ").append(key).append(';');
        }
        if (problems.length() > 0) {
            throw new IllegalArgumentException(
                    reader.getFile() + " does not fit the model and its config:" + problems);
        }
    }

    private static void copy(SafetensorsReader reader, String key, Parameter parameter)
            throws IOException {
        NDArray target = parameter.getArray();
        try (NDManager scratch = target.getManager().newSubManager()) {
            NativeArrays.copyInto(target, reader.read(key, scratch));
        }
    }
}
