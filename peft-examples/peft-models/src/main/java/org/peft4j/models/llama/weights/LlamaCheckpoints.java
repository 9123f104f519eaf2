package org.peft4j.models.llama.weights;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import org.peft4j.core.io.AtomicDirectory;
import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.io.SafetensorsWriter;
import org.peft4j.core.parallel.Sharding;
import org.peft4j.core.parallel.Shardings;
import org.peft4j.core.tree.BlockPaths;
import org.peft4j.models.llama.LlamaConfig;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.parallel.TensorParallel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Loads Llama checkpoints into {@link LlamaForCausalLM}.
 *
 * <p>Each parameter's initializer is pointed at its tensor in the checkpoint, and the model is
 * initialised once: DJL then shapes every parameter from the config and the loader checks the
 * tensor against that shape before reading it, tensor by tensor, into the parameter. A missing
 * tensor or a shape that disagrees with the config fails with the tensor's name.
 */
public final class LlamaCheckpoints {

    private static final Logger logger = LoggerFactory.getLogger(LlamaCheckpoints.class);

    /** The files of a Hugging Face checkpoint that a save replaces (tokenizer files are kept). */
    private static final Pattern CHECKPOINT_FILE =
            Pattern.compile(
                    "(generation_)?config\\.json"
                            + "|model(-\\d+-of-\\d+)?\\.safetensors"
                            + "|model\\.safetensors\\.index\\.json"
                            + "|pytorch_model(-\\d+-of-\\d+)?\\.bin"
                            + "|pytorch_model\\.bin\\.index\\.json");

    private LlamaCheckpoints() {}

    /**
     * Loads a Hugging Face checkpoint directory or a llama2.c file (or a directory holding one).
     * A save of the directory that was killed is first finished or undone ({@link
     * AtomicDirectory#recover}).
     *
     * @param path the checkpoint
     * @param manager the manager that owns the weights
     * @return the loaded model
     * @throws IOException if a file is missing, truncated or malformed; the message names it
     */
    public static LlamaForCausalLM load(Path path, NDManager manager) throws IOException {
        return load(path, manager, TensorParallel.single(), false);
    }

    /**
     * Loads a checkpoint into a model split across a tensor-parallel group: each rank reads every
     * tensor whole, one at a time, and keeps its part.
     *
     * @param path the checkpoint
     * @param manager the manager that owns this rank's weights
     * @param group the tensor-parallel group
     * @param tensorParallelOutput whether each rank keeps its part of the logits
     * @return this rank's model
     * @throws IOException if a file is missing, truncated or malformed; the message names it
     */
    public static LlamaForCausalLM load(
            Path path, NDManager manager, TensorParallel group, boolean tensorParallelOutput)
            throws IOException {
        if (!Files.isRegularFile(path)) {
            AtomicDirectory.recover(path); // a save killed mid-swap is finished or undone first
        }
        Path llama2c = findLlama2c(path);
        if (llama2c != null) {
            try (Llama2cWeights weights = Llama2cWeights.open(llama2c)) {
                return load(
                        split(weights.config(), group, tensorParallelOutput),
                        weights,
                        manager,
                        group);
            }
        }
        Path config = path.resolve("config.json");
        if (!Files.isRegularFile(config)) {
            throw new NoSuchFileException(
                    path.toString(),
                    null,
                    "is neither a Hugging Face checkpoint (no config.json) nor a llama2.c .bin"
                            + " checkpoint");
        }
        LlamaConfig llamaConfig = split(LlamaConfig.fromJson(config), group, tensorParallelOutput);
        try (SafetensorsWeights weights = SafetensorsWeights.open(path)) {
            return load(llamaConfig, weights, manager, group);
        }
    }

    private static LlamaConfig split(LlamaConfig config, TensorParallel group, boolean output) {
        if (group.getDegree() == 1 && config.getTensorParallelDegree() == 1) {
            return config;
        }
        return config.toBuilder()
                .optTensorParallel(group.getDegree(), group.getRank(), output)
                .build();
    }

    /**
     * Writes a model as a Hugging Face checkpoint: {@code config.json} and {@code
     * model.safetensors} (float32), all or nothing: the directory is replaced as a whole ({@link
     * AtomicDirectory}), so a save killed at any moment leaves the old checkpoint or the new one
     * once the next save or {@link #load} has recovered it. Every checkpoint file of the old
     * directory (weights of any layout, their index, the configs) is replaced; other entries, a
     * tokenizer or a training run's files, are kept. To write a new directory with the tokenizer
     * in the same replacement, use {@link #saveWithTokenizer}.
     *
     * @param llama the model, with its weights (merged adapters included)
     * @param dir the directory; created when missing
     * @throws IOException if writing fails; the directory is then as it was, and the message names
     *     the file
     * @throws IllegalArgumentException if {@code dir} is a file
     */
    public static void save(LlamaForCausalLM llama, Path dir) throws IOException {
        requireWhole(llama);
        AtomicDirectory.replace(
                dir, name -> !CHECKPOINT_FILE.matcher(name).matches(), d -> write(llama, d));
    }

    /**
     * Writes a model and the tokenizer beside another checkpoint ({@link #copyTokenizer}) as one
     * new directory, all or nothing: {@code dir} is replaced as a whole, none of its old entries
     * kept, so a killed write leaves the old directory or the new one whole.
     *
     * @param llama the model, with its weights (merged adapters included)
     * @param tokenizerFrom the model path whose tokenizer files are copied
     * @param dir the directory; created when missing
     * @throws IOException if there is no tokenizer or writing fails; the directory is then as it
     *     was
     * @throws IllegalArgumentException if {@code dir} is a file
     */
    public static void saveWithTokenizer(LlamaForCausalLM llama, Path tokenizerFrom, Path dir)
            throws IOException {
        requireWhole(llama);
        AtomicDirectory.replace(
                dir,
                AtomicDirectory.KEEP_NOTHING,
                d -> {
                    write(llama, d);
                    copyTokenizer(tokenizerFrom, d);
                });
    }

    private static void requireWhole(LlamaForCausalLM llama) {
        if (llama.getTensorParallelGroup().getDegree() > 1) {
            throw new IllegalStateException(
                    "this model holds one rank's part of its layers; save the full model from a"
                            + " single-process run (adapters save merged with"
                            + " LoRAModel.savePretrained)");
        }
    }

    private static void write(LlamaForCausalLM llama, Path dir) throws IOException {
        Map<String, NDArray> tensors = new LinkedHashMap<>();
        BlockPaths.parameters(llama).forEach((name, p) -> tensors.put(name, p.getArray()));
        SafetensorsWriter.write(dir.resolve(SafetensorsWeights.SINGLE), tensors);
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        AtomicFiles.writeString(
                dir.resolve("config.json"),
                json.writeValueAsString(llama.getConfig().toJson()) + '\n');
    }

    /**
     * Copies the tokenizer found next to a model ({@code tokenizer.json}, with {@code
     * tokenizer_config.json}, {@code special_tokens_map.json}, {@code generation_config.json} (its
     * EOS ids stop generation) and {@code chat_template.jinja} when present, else {@code
     * tokenizer.bin}) into a directory, each atomically, with a new file's permissions (the
     * umask's, not the source's).
     *
     * @param model the model path the tokenizer sits beside
     * @param dir the target directory
     * @throws IOException if there is no tokenizer or copying fails
     */
    public static void copyTokenizer(Path model, Path dir) throws IOException {
        Path from = Files.isDirectory(model) ? model : model.toAbsolutePath().getParent();
        boolean copied = false;
        for (String name :
                new String[] {
                    "tokenizer.json",
                    "tokenizer_config.json",
                    "special_tokens_map.json",
                    "generation_config.json",
                    "chat_template.jinja"
                }) {
            if (Files.isRegularFile(from.resolve(name))) {
                AtomicFiles.copy(from.resolve(name), dir.resolve(name));
                copied |= name.equals("tokenizer.json");
            }
        }
        if (!copied) {
            if (!Files.isRegularFile(from.resolve("tokenizer.bin"))) {
                throw new NoSuchFileException(
                        from.toString(), null, "holds neither tokenizer.json nor tokenizer.bin");
            }
            AtomicFiles.copy(from.resolve("tokenizer.bin"), dir.resolve("tokenizer.bin"));
        }
    }

    /** Returns the llama2.c checkpoint at {@code path}, or the one .bin in that directory. */
    private static Path findLlama2c(Path path) throws IOException {
        if (Files.isRegularFile(path)) {
            return path;
        }
        if (!Files.isDirectory(path)) {
            throw new NoSuchFileException(path.toString(), null, "no such model file or directory");
        }
        if (Files.isRegularFile(path.resolve("config.json"))) {
            return null;
        }
        List<Path> bins = new ArrayList<>();
        try (Stream<Path> files = Files.list(path)) {
            files.filter(p -> p.getFileName().toString().endsWith(".bin"))
                    .filter(p -> !p.getFileName().toString().startsWith("tokenizer"))
                    .forEach(bins::add);
        }
        return bins.size() == 1 ? bins.get(0) : null;
    }

    static LlamaForCausalLM load(
            LlamaConfig config, WeightSource weights, NDManager manager, TensorParallel group)
            throws IOException {
        LlamaForCausalLM llama = new LlamaForCausalLM(config, group);
        Map<String, Parameter> parameters = BlockPaths.parameters(llama);
        Map<String, Sharding> shardings = Shardings.of(llama, parameters);
        Set<String> unused = new LinkedHashSet<>(weights.names());
        for (Map.Entry<String, Parameter> entry : parameters.entrySet()) {
            String name = entry.getKey();
            if (!weights.names().contains(name)) {
                throw new IOException(
                        weights.describe()
                                + ": missing tensor "
                                + name
                                + " (the config "
                                + config
                                + " needs it)");
            }
            unused.remove(name);
            Sharding sharding = shardings.get(name);
            entry.getValue()
                    .setInitializer((m, shape, type) -> read(weights, name, shape, sharding, m));
        }
        try {
            llama.initialize(manager, DataType.FLOAT32, new Shape(1, 1));
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
        unused.removeIf(n -> n.endsWith("rotary_emb.inv_freq"));
        if (config.isTieWordEmbeddings()) {
            unused.remove("lm_head.weight");
        }
        if (!unused.isEmpty()) {
            logger.warn("{}: tensors not used by the model: {}", weights.describe(), unused);
        }
        return llama;
    }

    private static NDArray read(
            WeightSource weights, String name, Shape local, Sharding sharding, NDManager m) {
        Shape expected = sharding == null ? local : sharding.fullShape(local);
        Shape found = weights.shape(name);
        if (!found.equals(expected)) {
            throw new IllegalArgumentException(
                    weights.describe()
                            + ": tensor "
                            + name
                            + " has shape "
                            + found
                            + " but the config implies "
                            + expected);
        }
        try {
            NDArray full = weights.load(name, m);
            if (sharding == null) {
                return full;
            }
            try (NDArray whole = full) {
                return sharding.localPart(whole);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
