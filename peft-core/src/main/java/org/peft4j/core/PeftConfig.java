package org.peft4j.core;

import ai.djl.ndarray.types.DataType;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.peft4j.core.config.ConfigPair;
import org.peft4j.core.config.JsonConfigReader;
import org.peft4j.core.io.AtomicFiles;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.IntFunction;
import java.util.stream.Stream;

/**
 * The immutable description of an adapter, written to and read from two JSON files side by side:
 * Hugging Face PEFT's {@code adapter_config.json} and PaddleNLP's {@code lora_config.json} or
 * {@code prefix_config.json}.
 *
 * <p>Each file holds only the fields its tool defines, under that tool's names, so that each tool
 * reads its file as written: {@code adapter_config.json} only fields of Hugging Face's {@code
 * PeftConfig} and of the method's config class ({@code LoraConfig}, {@code PrefixTuningConfig}),
 * PaddleNLP's file only fields of PaddleNLP's config class. Settings that only PaddleNLP has
 * ({@code merge_weights}, {@code trainable_modules}, {@code dtype}, {@code tensor_parallel_degree},
 * ...) are therefore only in PaddleNLP's file.
 *
 * <p>Fields shared by all methods: {@code peft_type} (which selects the subclass on read), {@code
 * task_type}, {@code base_model_name_or_path}, and two of PaddleNLP's: {@code dtype} of the adapter
 * weights ({@code float32} or {@code float16}; a file's {@code bfloat16}, PaddleNLP's usual
 * choice, reads as float32 with a warning, and a builder refuses it, because DJL's PyTorch engine
 * terminates the JVM on bfloat16 arrays) and {@code tensor_parallel_degree}.
 *
 * <p>Loading reads both files when both are there and refuses a setting they state differently
 * ({@link ConfigPair}); either file alone loads too, as do earlier peft4j files that held
 * PaddleNLP's fields inside {@code adapter_config.json}. Reading keeps unknown fields out with a
 * logged warning, so that files of newer versions load; fields that would change the result in a
 * way peft4j does not implement are refused instead.
 */
public abstract class PeftConfig {

    /** The config file of the Hugging Face PEFT format. */
    public static final String CONFIG_FILE = "adapter_config.json";

    private static final Logger logger = LoggerFactory.getLogger(PeftConfig.class);
    private static final ObjectMapper JSON =
            new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final String taskType;
    private final String baseModelNameOrPath;
    private final DataType dtype;
    private final int tensorParallelDegree;

    /**
     * Copies and validates the shared fields.
     *
     * @param builder the builder holding them
     * @throws IllegalArgumentException if a shared field is invalid
     */
    protected PeftConfig(BaseBuilder<?> builder) {
        this.taskType = builder.taskType;
        this.baseModelNameOrPath = builder.baseModelNameOrPath;
        this.dtype = checkDtype(builder.dtype);
        if (builder.tensorParallelDegree < 1) {
            throw new IllegalArgumentException(
                    "tensor_parallel_degree must be >= 1 (or -1 for none, as PaddleNLP writes),"
                            + " got "
                            + builder.tensorParallelDegree);
        }
        this.tensorParallelDegree = builder.tensorParallelDegree;
    }

    /**
     * Returns the method's {@code peft_type}.
     *
     * @return for example {@code "LORA"}
     */
    public abstract String getPeftType();

    /**
     * Returns the task the adapter was trained for, as Hugging Face names it.
     *
     * @return for example {@code "CAUSAL_LM"}, or {@code null} when not given
     */
    public String getTaskType() {
        return taskType;
    }

    /**
     * Returns the name or path of the base model the adapter belongs to.
     *
     * @return the name, or {@code null} when not given
     */
    public String getBaseModelNameOrPath() {
        return baseModelNameOrPath;
    }

    /**
     * Returns the type of the adapter's weights.
     *
     * @return {@link DataType#FLOAT32} or {@link DataType#FLOAT16}
     */
    public DataType getDtype() {
        return dtype;
    }

    /**
     * Returns the tensor-parallel degree the adapter is sharded for.
     *
     * @return 1 for a single process
     */
    public int getTensorParallelDegree() {
        return tensorParallelDegree;
    }

    /**
     * Returns the config an adapter uses on a model split across {@code modelDegree}
     * tensor-parallel ranks: {@code config} itself when its {@code tensor_parallel_degree} is
     * {@code modelDegree}, otherwise a copy with {@code modelDegree}, and a logged warning. Every
     * method's model ({@code LoRAModel}, {@code PrefixModelForCausalLM}) applies this one rule when
     * it attaches an adapter.
     *
     * <p>The model's layout wins, as in PaddleNLP, whose LoRA and prefix models reset the config's
     * degree to the model's with a warning. The layers that carry the adapter are the model's, split
     * before the adapter is attached, so the model alone decides which rows, columns or key/value
     * heads each rank's part of the adapter holds; the config's degree only records how an
     * adapter's files are sharded. Refusing a disagreeing config would make an adapter saved on one
     * process unusable on a split model and the other way round; following the config would split
     * the adapter unlike its layers. The builders cannot tell a default degree of 1 from a written
     * one, so a config built without a degree warns on a split model too: build it with the model's
     * degree to silence that.
     *
     * @param config the adapter's config
     * @param modelDegree the tensor-parallel degree of the model's split layers, 1 when none are
     * @param withDegree makes a copy of {@code config} with another degree (its {@code toBuilder()}
     *     with {@code optTensorParallelDegree})
     * @param <C> the method's config type
     * @return the config with the model's degree
     */
    public static <C extends PeftConfig> C forModelDegree(
            C config, int modelDegree, IntFunction<C> withDegree) {
        if (config.getTensorParallelDegree() == modelDegree) {
            return config;
        }
        logger.warn(
                "tensor_parallel_degree {} of the {} config disagrees with the model's {}; using {}"
                        + " (the model's layout decides how the adapter is split)",
                config.getTensorParallelDegree(),
                config.getPeftType(),
                modelDegree,
                modelDegree);
        return withDegree.apply(modelDegree);
    }

    /**
     * Writes the method's own fields of {@code adapter_config.json}: only fields that Hugging
     * Face's config class of the method defines.
     *
     * @param json the object to add the fields to
     */
    protected abstract void writeFields(ObjectNode json);

    /**
     * Returns the name of PaddleNLP's config file of the method.
     *
     * @return for example {@code "lora_config.json"}
     */
    public abstract String getSeedConfigFile();

    /**
     * Returns the content of PaddleNLP's config file: only fields that PaddleNLP's config class of
     * the method defines, under PaddleNLP's names.
     *
     * @return a new JSON object
     * @throws IllegalArgumentException if a setting cannot be written so that PaddleNLP reads it
     *     as peft4j does (a target regex outside the subset Python reads alike)
     */
    public abstract ObjectNode toSeedJson();

    /**
     * Writes every setting as peft4j holds it, for {@link #equals}, {@link #hashCode} and {@link
     * #toString}: the two files' contents may lose the form a setting was given in.
     *
     * @param json the object to add the method's settings to
     */
    protected abstract void describeFields(ObjectNode json);

    /**
     * Returns the content of {@code adapter_config.json}: {@code peft_type} first, then the shared
     * fields Hugging Face's {@code PeftConfig} defines, then the method's.
     *
     * @return a new JSON object
     * @throws IllegalArgumentException if a setting cannot be written so that Hugging Face PEFT
     *     reads it as peft4j does (a target regex outside the subset Python reads alike)
     */
    public ObjectNode toJson() {
        ObjectNode json = sharedJson();
        writeFields(json);
        return json;
    }

    /**
     * Returns the shared fields of {@code adapter_config.json}, those of Hugging Face's {@code
     * PeftConfig}: {@code peft_type}, {@code task_type}, {@code base_model_name_or_path} and
     * {@code inference_mode}.
     *
     * @return a new JSON object
     */
    protected final ObjectNode sharedJson() {
        ObjectNode json = JSON.createObjectNode();
        json.put("peft_type", getPeftType());
        json.put("task_type", taskType);
        json.put("base_model_name_or_path", baseModelNameOrPath);
        json.put("inference_mode", true);
        return json;
    }

    /**
     * Returns a new empty JSON object, to build a config file in.
     *
     * @return the object
     */
    protected static ObjectNode newObject() {
        return JSON.createObjectNode();
    }

    /**
     * Returns {@code adapter_config.json} as indented JSON text.
     *
     * @return the text of {@link #toJson()}
     */
    public String toJsonString() {
        return text(toJson());
    }

    /**
     * Returns PaddleNLP's file as indented JSON text.
     *
     * @return the text of {@link #toSeedJson()}
     */
    public String toSeedJsonString() {
        return text(toSeedJson());
    }

    /**
     * Formats a JSON object as the config files are written: indented, with a final newline.
     *
     * @param json the object
     * @return its text
     */
    protected static String text(ObjectNode json) {
        try {
            return JSON.writeValueAsString(json) + '\n';
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Writes {@code adapter_config.json} and PaddleNLP's file ({@link #getSeedConfigFile()}) into a
     * directory, each atomically.
     *
     * @param dir the adapter directory; created when missing
     * @throws IOException if writing fails; an existing file is then unchanged
     * @throws IllegalArgumentException if a setting cannot be written for Python (see {@link
     *     #toJson()}); nothing is written then
     */
    public void savePretrained(Path dir) throws IOException {
        String seed = toSeedJsonString();
        String adapter = toJsonString();
        AtomicFiles.writeString(dir.resolve(getSeedConfigFile()), seed);
        AtomicFiles.writeString(dir.resolve(CONFIG_FILE), adapter);
    }

    private ObjectNode describe() {
        ObjectNode json = JSON.createObjectNode();
        json.put("peft_type", getPeftType());
        json.put("task_type", taskType);
        json.put("base_model_name_or_path", baseModelNameOrPath);
        json.put("dtype", dtypeName(dtype));
        json.put("tensor_parallel_degree", tensorParallelDegree);
        describeFields(json);
        return json;
    }

    /**
     * Returns every setting as JSON (not a file's content: see {@link #toJsonString()} and {@link
     * #toSeedJsonString()}).
     *
     * @return indented JSON
     */
    @Override
    public String toString() {
        return text(describe());
    }

    /** {@inheritDoc} */
    @Override
    public boolean equals(Object o) {
        return o instanceof PeftConfig && describe().equals(((PeftConfig) o).describe());
    }

    /** {@inheritDoc} */
    @Override
    public int hashCode() {
        return describe().hashCode();
    }

    /**
     * Reads a config of any method from JSON text, dispatching on {@code peft_type}.
     *
     * @param json the text of a JSON object with a {@code peft_type} field
     * @param source where the text came from, for messages
     * @return the config of the method named by {@code peft_type}
     * @throws IllegalArgumentException if the text is malformed, the type unknown or a field
     *     invalid
     */
    public static PeftConfig fromJson(String json, String source) {
        JsonConfigReader reader = JsonConfigReader.parse(json, source);
        String type = reader.optString("peft_type");
        if (type == null) {
            throw new IllegalArgumentException(
                    source
                            + ": field \"peft_type\" is missing; it names the method, e.g."
                            + " \"LORA\"");
        }
        return PeftMethods.forType(type, source).readConfig(reader);
    }

    /**
     * Reads the config of the adapter saved in a directory: {@code adapter_config.json} and the
     * method's PaddleNLP file beside it when both are there (a setting they state differently is
     * refused), else whichever of them exists.
     *
     * @param dir an adapter directory, or a config file (read alone)
     * @return the config
     * @throws NoSuchFileException if the directory holds no config file; the message lists what it
     *     holds
     * @throws IOException if a file cannot be read
     * @throws IllegalArgumentException if a file is malformed or not UTF-8, a field invalid, or the
     *     two files disagree
     */
    public static PeftConfig fromPretrained(Path dir) throws IOException {
        if (Files.isRegularFile(dir)) {
            return readFile(dir);
        }
        Path file = findConfigFile(dir);
        if (!file.getFileName().toString().equals(CONFIG_FILE)) {
            return readFile(file);
        }
        JsonConfigReader adapter = JsonConfigReader.read(file);
        PeftMethod method = PeftMethods.forType(peftType(adapter), file.toString());
        for (String name : method.getLegacyConfigFiles()) {
            Path seed = dir.resolve(name);
            if (Files.isRegularFile(seed)) {
                return method.readConfigs(ConfigPair.of(adapter, JsonConfigReader.read(seed)));
            }
        }
        return method.readConfig(adapter);
    }

    /**
     * Finds the config file of an adapter directory.
     *
     * @param dir an adapter directory
     * @return {@code adapter_config.json}, or the first legacy file a method recognises
     * @throws NoSuchFileException if there is none; the message lists what the directory holds
     */
    public static Path findConfigFile(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new NoSuchFileException(dir.toString(), null, "no such adapter directory");
        }
        List<String> candidates = new ArrayList<>();
        candidates.add(CONFIG_FILE);
        for (PeftMethod method : PeftMethods.all()) {
            candidates.addAll(method.getLegacyConfigFiles());
        }
        for (String name : candidates) {
            Path file = dir.resolve(name);
            if (Files.isRegularFile(file)) {
                return file;
            }
        }
        List<String> present = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            files.forEach(p -> present.add(p.getFileName().toString()));
        }
        throw new NoSuchFileException(
                dir.toString(),
                null,
                "holds none of the adapter config files " + candidates + "; it holds " + present);
    }

    private static String peftType(JsonConfigReader reader) {
        String type = reader.optString("peft_type");
        if (type == null) {
            throw new IllegalArgumentException(
                    reader.getSource()
                            + ": field \"peft_type\" is missing; it names the method, e.g."
                            + " \"LORA\"");
        }
        return type;
    }

    private static PeftConfig readFile(Path file) throws IOException {
        JsonConfigReader reader = JsonConfigReader.read(file);
        String type = reader.optString("peft_type");
        if (type != null) {
            return PeftMethods.forType(type, file.toString()).readConfig(reader);
        }
        String name = file.getFileName().toString();
        for (PeftMethod method : PeftMethods.all()) {
            if (method.getLegacyConfigFiles().contains(name)) {
                return method.readConfig(reader);
            }
        }
        throw new IllegalArgumentException(
                file + ": field \"peft_type\" is missing; it names the method, e.g. \"LORA\"");
    }

    /**
     * Names a data type as configs write it.
     *
     * @param type a data type
     * @return for example {@code "float32"}
     */
    public static String dtypeName(DataType type) {
        return type.name().toLowerCase(Locale.ROOT);
    }

    private static DataType checkDtype(DataType type) {
        if (type == DataType.BFLOAT16) {
            throw new IllegalArgumentException(
                    "dtype bfloat16 is not supported: DJL's PyTorch engine terminates the JVM on"
                            + " bfloat16 arrays; use float32 or float16");
        }
        if (type != DataType.FLOAT32 && type != DataType.FLOAT16) {
            throw new IllegalArgumentException(
                    "dtype must be float32 or float16, got " + dtypeName(type));
        }
        return type;
    }

    /**
     * The builder of the shared fields; each method's builder extends it.
     *
     * @param <B> the concrete builder type, returned by every setter
     */
    public abstract static class BaseBuilder<B extends BaseBuilder<B>> {

        String taskType;
        String baseModelNameOrPath;
        DataType dtype = DataType.FLOAT32;
        int tensorParallelDegree = 1;

        /** Creates a builder with the defaults of every shared field. */
        protected BaseBuilder() {}

        /**
         * Returns this builder as its concrete type.
         *
         * @return {@code this}
         */
        protected abstract B self();

        /**
         * Sets the task, as Hugging Face names it ({@code "CAUSAL_LM"}, ...).
         *
         * @param taskType the task; default none
         * @return this builder
         */
        public B optTaskType(String taskType) {
            this.taskType = taskType;
            return self();
        }

        /**
         * Sets the name or path of the base model.
         *
         * @param baseModelNameOrPath the name; default none
         * @return this builder
         */
        public B optBaseModelNameOrPath(String baseModelNameOrPath) {
            this.baseModelNameOrPath = baseModelNameOrPath;
            return self();
        }

        /**
         * Sets the type of the adapter's weights.
         *
         * @param dtype {@link DataType#FLOAT32} (default) or {@link DataType#FLOAT16}
         * @return this builder
         */
        public B optDtype(DataType dtype) {
            this.dtype = dtype;
            return self();
        }

        /**
         * Sets the tensor-parallel degree.
         *
         * @param degree at least 1 (default 1); -1, PaddleNLP's "not parallel", means 1
         * @return this builder
         */
        public B optTensorParallelDegree(int degree) {
            this.tensorParallelDegree = degree == -1 ? 1 : degree;
            return self();
        }

        /**
         * Reads the shared fields from JSON.
         *
         * @param reader the JSON object
         * @return this builder
         * @throws IllegalArgumentException if a shared field has the wrong type or value
         */
        public B readShared(JsonConfigReader reader) {
            optTaskType(reader.optString("task_type"));
            optBaseModelNameOrPath(reader.optString("base_model_name_or_path"));
            String dtypeName = reader.optString("dtype");
            if (dtypeName != null) {
                optDtype(parseDtype(reader, dtypeName));
            }
            Integer degree = reader.optInt("tensor_parallel_degree");
            if (degree != null) {
                optTensorParallelDegree(degree);
            }
            // Informational for peft4j: the caller supplies the base model and the mode.
            reader.skip("inference_mode");
            reader.skip("revision");
            reader.skip("peft_version");
            reader.skip("auto_mapping");
            return self();
        }

        private static DataType parseDtype(JsonConfigReader reader, String name) {
            switch (name) {
                case "float32":
                    return DataType.FLOAT32;
                case "float16":
                    return DataType.FLOAT16;
                case "bfloat16":
                    // PaddleNLP's usual dtype; a bfloat16 array would terminate DJL's engine
                    logger.warn(
                            "{}: dtype bfloat16 is computed in float32 (DJL's PyTorch engine"
                                    + " cannot hold bfloat16 arrays); the weights are widened"
                                    + " exactly",
                            reader.getSource());
                    return DataType.FLOAT32;
                default:
                    throw reader.invalid(
                            "dtype", "must be \"float32\" or \"float16\", found \"" + name + "\"");
            }
        }
    }
}
