package org.peft4j.prefix;

import static org.peft4j.core.config.Checks.require;

import com.fasterxml.jackson.databind.node.ObjectNode;

import org.peft4j.core.PeftConfig;
import org.peft4j.core.config.ConfigPair;
import org.peft4j.core.config.JsonConfigReader;
import org.peft4j.core.lm.CausalLanguageModel;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * The immutable description of a prefix: the seed's {@code PrefixConfig}, with the model's numbers
 * taken from the model itself by {@link Builder#fromModel(CausalLanguageModel)} so that they cannot
 * disagree with it.
 *
 * <p>Saved as two files, each with only its tool's fields: {@code adapter_config.json} (Hugging
 * Face PEFT's {@code PrefixTuningConfig}) and {@code prefix_config.json} (PaddleNLP's {@code
 * PrefixConfig}); loading reads both and refuses a setting they state differently.
 *
 * <table>
 *   <caption>Fields (seed names; Hugging Face's in brackets)</caption>
 *   <tr><th>field</th><th>meaning</th></tr>
 *   <tr><td>num_prefix_tokens (num_virtual_tokens)</td><td>{@code P &gt; 0}</td></tr>
 *   <tr><td>num_hidden_layers (num_layers)</td><td>{@code L}, the model's decoder layers</td></tr>
 *   <tr><td>num_attention_heads</td><td>the model's query heads</td></tr>
 *   <tr><td>num_key_value_heads (seed: multi_query_group_num)</td><td>the model's kv heads: the
 *       prefix has {@code kvHeads} heads of {@code headDim} per layer</td></tr>
 *   <tr><td>hidden_size</td><td>the model's width; the embedding width with a projection</td></tr>
 *   <tr><td>head_dim</td><td>the model's head size, by default {@code hidden / heads}</td></tr>
 *   <tr><td>prefix_projection</td><td>embedding [P, hidden] then Linear-Tanh-Linear, instead of
 *       an embedding straight to the keys and values</td></tr>
 *   <tr><td>prefix_projection_hidden_size (encoder_hidden_size)</td><td>the projection's inner
 *       width</td></tr>
 *   <tr><td>prefix_dropout</td><td>dropout on the prefix in training, in [0, 1)</td></tr>
 * </table>
 */
public final class PrefixConfig extends PeftConfig {

    /** The {@code peft_type} of prefix tuning. */
    public static final String PEFT_TYPE = "PREFIX_TUNING";

    /** The seed's (PaddleNLP's) config file name. */
    public static final String SEED_CONFIG_FILE = "prefix_config.json";

    private final int numPrefixTokens;
    private final int numHiddenLayers;
    private final int numAttentionHeads;
    private final int numKeyValueHeads;
    private final int hiddenSize;
    private final int headDim;
    private final boolean prefixProjection;
    private final int prefixProjectionHiddenSize;
    private final double prefixDropout;

    private PrefixConfig(Builder b) {
        super(b);
        require(b.numPrefixTokens > 0, "num_prefix_tokens must be > 0, got " + b.numPrefixTokens);
        require(b.numHiddenLayers > 0, "num_hidden_layers must be > 0, got " + b.numHiddenLayers);
        require(
                b.numAttentionHeads > 0,
                "num_attention_heads must be > 0, got " + b.numAttentionHeads);
        require(b.hiddenSize > 0, "hidden_size must be > 0, got " + b.hiddenSize);
        int kvHeads = b.numKeyValueHeads > 0 ? b.numKeyValueHeads : b.numAttentionHeads;
        require(
                b.numAttentionHeads % kvHeads == 0,
                "num_attention_heads ("
                        + b.numAttentionHeads
                        + ") must be a multiple of num_key_value_heads ("
                        + kvHeads
                        + ")");
        require(
                b.headDim > 0 || b.hiddenSize % b.numAttentionHeads == 0,
                "num_attention_heads ("
                        + b.numAttentionHeads
                        + ") must divide hidden_size ("
                        + b.hiddenSize
                        + ") unless head_dim is given");
        require(
                !b.prefixProjection || b.prefixProjectionHiddenSize > 0,
                "prefix_projection_hidden_size must be > 0 with prefix_projection, got "
                        + b.prefixProjectionHiddenSize);
        require(
                b.prefixDropout >= 0 && b.prefixDropout < 1,
                "prefix_dropout must lie in [0, 1), got " + b.prefixDropout);
        this.numPrefixTokens = b.numPrefixTokens;
        this.numHiddenLayers = b.numHiddenLayers;
        this.numAttentionHeads = b.numAttentionHeads;
        this.numKeyValueHeads = kvHeads;
        this.hiddenSize = b.hiddenSize;
        this.headDim = b.headDim > 0 ? b.headDim : b.hiddenSize / b.numAttentionHeads;
        this.prefixProjection = b.prefixProjection;
        this.prefixProjectionHiddenSize = b.prefixProjectionHiddenSize;
        this.prefixDropout = b.prefixDropout;
    }

    /**
     * Creates a builder.
     *
     * @return a builder; the token count and the model's numbers are required
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Returns a builder holding this config's values.
     *
     * @return a new builder
     */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.numPrefixTokens = numPrefixTokens;
        b.numHiddenLayers = numHiddenLayers;
        b.numAttentionHeads = numAttentionHeads;
        b.numKeyValueHeads = numKeyValueHeads;
        b.hiddenSize = hiddenSize;
        b.headDim = headDim;
        b.prefixProjection = prefixProjection;
        b.prefixProjectionHiddenSize = prefixProjectionHiddenSize;
        b.prefixDropout = prefixDropout;
        return b.optTaskType(getTaskType())
                .optBaseModelNameOrPath(getBaseModelNameOrPath())
                .optDtype(getDtype())
                .optTensorParallelDegree(getTensorParallelDegree());
    }

    /** {@inheritDoc} */
    @Override
    public String getPeftType() {
        return PEFT_TYPE;
    }

    /**
     * Returns the number of prefix tokens.
     *
     * @return {@code P}
     */
    public int getNumPrefixTokens() {
        return numPrefixTokens;
    }

    /**
     * Returns the number of decoder layers the prefix feeds.
     *
     * @return {@code L}
     */
    public int getNumHiddenLayers() {
        return numHiddenLayers;
    }

    /**
     * Returns the model's query heads.
     *
     * @return the attention heads
     */
    public int getNumAttentionHeads() {
        return numAttentionHeads;
    }

    /**
     * Returns the model's key/value heads, the heads of the prefix.
     *
     * @return the kv heads
     */
    public int getNumKeyValueHeads() {
        return numKeyValueHeads;
    }

    /**
     * Returns the model's width.
     *
     * @return the hidden size
     */
    public int getHiddenSize() {
        return hiddenSize;
    }

    /**
     * Returns the size of one head.
     *
     * @return the head dimension
     */
    public int getHeadDim() {
        return headDim;
    }

    /**
     * Returns the width of the encoder's output: a key and a value for every layer.
     *
     * @return {@code 2 * L * kvHeads * headDim}
     */
    public int getPrefixWidth() {
        return 2 * numHiddenLayers * numKeyValueHeads * headDim;
    }

    /**
     * Returns whether the prefix goes through Linear-Tanh-Linear.
     *
     * @return the flag
     */
    public boolean isPrefixProjection() {
        return prefixProjection;
    }

    /**
     * Returns the projection's inner width.
     *
     * @return the width (meaningful with a projection)
     */
    public int getPrefixProjectionHiddenSize() {
        return prefixProjectionHiddenSize;
    }

    /**
     * Returns the dropout rate on the prefix in training.
     *
     * @return a rate in [0, 1)
     */
    public double getPrefixDropout() {
        return prefixDropout;
    }

    /**
     * Checks that this prefix fits a model.
     *
     * @param model the model to wrap
     * @throws IllegalArgumentException naming every number that disagrees, with both values
     */
    public void checkFits(CausalLanguageModel model) {
        StringBuilder problems = new StringBuilder();
        compare(problems, "num_hidden_layers", numHiddenLayers, model.getNumHiddenLayers());
        compare(problems, "num_key_value_heads", numKeyValueHeads, model.getNumKeyValueHeads());
        compare(problems, "head_dim", headDim, model.getHeadDim());
        // A config read from Hugging Face's file knows only the kv heads (PEFT stores them as
        // num_attention_heads for grouped-query models); compare query heads when it knows them.
        if (numAttentionHeads != numKeyValueHeads
                || model.getNumAttentionHeads() == model.getNumKeyValueHeads()) {
            compare(
                    problems,
                    "num_attention_heads",
                    numAttentionHeads,
                    model.getNumAttentionHeads());
        }
        if (prefixProjection) {
            compare(problems, "hidden_size", hiddenSize, model.getHiddenSize());
        }
        if (problems.length() > 0) {
            throw new IllegalArgumentException(
                    "the prefix config disagrees with the "
                            + model.getClass().getSimpleName()
                            + ":"
                            + problems
                            + "; build the config with PrefixConfig.builder().fromModel(model)");
        }
    }

    private static void compare(StringBuilder problems, String field, int config, int model) {
        if (config != model) {
            problems.append(' ')
                    .append(field)
                    .append(" is ")
                    .append(config)
                    .append(" in the config, ")
                    .append(model)
                    .append(" in the model;");
        }
    }

    /**
     * Writes Hugging Face's {@code PrefixTuningConfig} fields: {@code num_virtual_tokens}, {@code
     * token_dim} ({@code kvHeads * headDim}) and {@code num_attention_heads} ({@code kvHeads}) as
     * PEFT writes them for grouped-query models, {@code num_transformer_submodules}, {@code
     * num_layers}, {@code prefix_projection} and {@code encoder_hidden_size} ({@code null} without
     * a projection). peft4j's other settings are PaddleNLP's and go to {@code prefix_config.json}.
     *
     * @param json the object to add the fields to
     */
    @Override
    protected void writeFields(ObjectNode json) {
        json.put("num_virtual_tokens", numPrefixTokens);
        json.put("token_dim", numKeyValueHeads * headDim);
        json.put("num_transformer_submodules", 1);
        json.put("num_attention_heads", numKeyValueHeads);
        json.put("num_layers", numHiddenLayers);
        putProjectionSize(json, "encoder_hidden_size");
        json.put("prefix_projection", prefixProjection);
    }

    private void putProjectionSize(ObjectNode json, String key) {
        if (prefixProjection) {
            json.put(key, prefixProjectionHiddenSize);
        } else {
            json.putNull(key);
        }
    }

    /** {@inheritDoc} */
    @Override
    public String getSeedConfigFile() {
        return SEED_CONFIG_FILE;
    }

    /**
     * Returns {@code prefix_config.json}: PaddleNLP's {@code PrefixConfig} fields under its names
     * ({@code num_prefix_tokens}, {@code num_attention_heads} (the query heads), {@code
     * multi_query_group_num} (the key/value heads), {@code num_hidden_layers}, {@code hidden_size},
     * {@code prefix_projection}, {@code prefix_projection_hidden_size}, {@code prefix_dropout},
     * {@code tensor_parallel_degree}, {@code dtype}).
     *
     * @return a new JSON object
     */
    @Override
    public ObjectNode toSeedJson() {
        ObjectNode json = newObject();
        json.put("num_prefix_tokens", numPrefixTokens);
        json.put("num_attention_heads", numAttentionHeads);
        json.put("multi_query_group_num", numKeyValueHeads);
        json.put("num_hidden_layers", numHiddenLayers);
        json.put("hidden_size", hiddenSize);
        json.put("prefix_projection", prefixProjection);
        putProjectionSize(json, "prefix_projection_hidden_size");
        json.put("prefix_dropout", prefixDropout);
        json.put("tensor_parallel_degree", getTensorParallelDegree());
        json.put("dtype", dtypeName(getDtype()));
        return json;
    }

    /** {@inheritDoc} */
    @Override
    protected void describeFields(ObjectNode json) {
        json.put("num_prefix_tokens", numPrefixTokens);
        json.put("num_hidden_layers", numHiddenLayers);
        json.put("num_attention_heads", numAttentionHeads);
        json.put("num_key_value_heads", numKeyValueHeads);
        json.put("hidden_size", hiddenSize);
        json.put("head_dim", headDim);
        json.put("prefix_projection", prefixProjection);
        json.put("prefix_projection_hidden_size", prefixProjectionHiddenSize);
        json.put("prefix_dropout", prefixDropout);
    }

    /**
     * Reads a prefix config: Hugging Face's {@code adapter_config.json} (whose {@code
     * num_attention_heads} counts the prefix's heads, the model's kv heads) or the seed's {@code
     * prefix_config.json}.
     *
     * @param r the JSON object
     * @return the config
     * @throws IllegalArgumentException if a field is missing or invalid; the message names file and
     *     field
     */
    public static PrefixConfig read(JsonConfigReader r) {
        String type = r.optString("peft_type");
        if (type != null && !PEFT_TYPE.equals(type)) {
            throw r.invalid("peft_type", "is \"" + type + "\", not \"" + PEFT_TYPE + "\"");
        }
        Builder b = builder();
        b.readShared(r);
        Integer tokens = first(r, "num_prefix_tokens", "num_virtual_tokens");
        Integer layers = first(r, "num_hidden_layers", "num_layers");
        if (tokens == null) {
            throw r.invalid("num_virtual_tokens", "is missing (seed: num_prefix_tokens)");
        }
        if (layers == null) {
            throw r.invalid("num_layers", "is missing (seed: num_hidden_layers)");
        }
        b.numPrefixTokens = tokens;
        b.numHiddenLayers = layers;
        Integer heads = r.optInt("num_attention_heads");
        Integer kvHeads = first(r, "num_key_value_heads", "multi_query_group_num");
        Integer tokenDim = r.optInt("token_dim");
        Integer hidden = r.optInt("hidden_size");
        Integer headDim = r.optInt("head_dim");
        if (heads == null) {
            throw r.invalid("num_attention_heads", "is missing");
        }
        b.numAttentionHeads = heads;
        b.numKeyValueHeads = kvHeads == null ? heads : kvHeads;
        if (headDim != null) {
            b.headDim = headDim;
        } else if (tokenDim != null && b.numKeyValueHeads > 0) {
            b.headDim = tokenDim / b.numKeyValueHeads;
        }
        if (hidden != null) {
            b.hiddenSize = hidden;
        } else if (tokenDim != null) {
            b.hiddenSize = tokenDim; // Hugging Face's embedding width
        } else {
            throw r.invalid("hidden_size", "is missing (Hugging Face: token_dim)");
        }
        Boolean projection = r.optBoolean("prefix_projection");
        b.prefixProjection = projection != null && projection;
        Integer projectionHidden = first(r, "prefix_projection_hidden_size", "encoder_hidden_size");
        if (projectionHidden != null) {
            b.prefixProjectionHiddenSize = projectionHidden;
        }
        Double dropout = r.optDouble("prefix_dropout");
        if (dropout != null) {
            b.prefixDropout = dropout;
        }
        Integer submodules = r.optInt("num_transformer_submodules");
        if (submodules != null && submodules != 1) {
            throw r.invalid(
                    "num_transformer_submodules",
                    "is " + submodules + "; peft4j's prefix tuning is for decoder-only models (1)");
        }
        r.skip("peft_version");
        r.ignore("init_weights", "Hugging Face's initialisation applies only when creating a prefix");
        r.refuseIfSet("modules_to_save", "whole trained copies of modules beside the prefix");
        r.warnAboutUnreadKeys();
        return r.build(b::build);
    }

    private static Integer first(JsonConfigReader r, String seedKey, String hfKey) {
        Integer seed = r.optInt(seedKey);
        Integer hf = r.optInt(hfKey);
        if (seed != null && hf != null && !seed.equals(hf)) {
            throw r.invalid(
                    seedKey, "(" + seed + ") disagrees with \"" + hfKey + "\" (" + hf + ")");
        }
        return seed != null ? seed : hf;
    }

    /**
     * Reads a prefix config from both of its files. A setting stated in both, under either tool's
     * name, must have one value: the token count, the layers, the key/value heads ({@code
     * num_attention_heads} in Hugging Face's file, {@code multi_query_group_num} in PaddleNLP's),
     * the projection and its width, and, where earlier peft4j versions wrote them into {@code
     * adapter_config.json}, the hidden size, dropout, dtype and tensor-parallel degree. PaddleNLP's file gives the query heads and hidden size, Hugging Face's the head size
     * ({@code token_dim / num_attention_heads}) and the task.
     *
     * @param files the two files
     * @return the config
     * @throws IllegalArgumentException if a file is invalid, or the files disagree (naming both
     *     files, the keys and both values)
     */
    public static PrefixConfig read(ConfigPair files) {
        JsonConfigReader adapterFile = files.getAdapterConfig().fresh();
        JsonConfigReader seedFile = files.getSeedConfig().fresh();
        PrefixConfig hf = read(files.getAdapterConfig().fresh());
        PrefixConfig seed = read(files.getSeedConfig().fresh());
        files.agree(
                "the number of prefix tokens",
                List.of("num_virtual_tokens", "num_prefix_tokens"),
                List.of("num_prefix_tokens", "num_virtual_tokens"),
                hf.numPrefixTokens,
                seed.numPrefixTokens);
        files.agree(
                "the number of layers",
                List.of("num_layers", "num_hidden_layers"),
                List.of("num_hidden_layers", "num_layers"),
                hf.numHiddenLayers,
                seed.numHiddenLayers);
        files.agree(
                "the prefix's key/value heads",
                List.of("num_key_value_heads", "num_attention_heads"),
                List.of("multi_query_group_num", "num_key_value_heads", "num_attention_heads"),
                hf.numKeyValueHeads,
                seed.numKeyValueHeads);
        // Hugging Face's num_attention_heads counts the prefix's (key/value) heads, as earlier peft4j
        // versions wrote it too: the query heads are PaddleNLP's file's alone
        files.agree(
                "the model's hidden size",
                List.of("hidden_size"),
                List.of("hidden_size"),
                hf.hiddenSize,
                seed.hiddenSize);
        files.agree(
                "prefix_projection",
                List.of("prefix_projection"),
                List.of("prefix_projection"),
                hf.prefixProjection,
                seed.prefixProjection);
        if (hf.prefixProjection) {
            files.agree(
                    "the projection's width",
                    List.of("encoder_hidden_size", "prefix_projection_hidden_size"),
                    List.of("prefix_projection_hidden_size", "encoder_hidden_size"),
                    hf.prefixProjectionHiddenSize,
                    seed.prefixProjectionHiddenSize);
        }
        files.agree(
                "prefix_dropout",
                List.of("prefix_dropout"),
                List.of("prefix_dropout"),
                hf.prefixDropout,
                seed.prefixDropout);
        files.agree(
                "the prefix's dtype",
                List.of("dtype"),
                List.of("dtype"),
                hf.getDtype(),
                seed.getDtype());
        files.agree(
                "tensor_parallel_degree",
                List.of("tensor_parallel_degree"),
                List.of("tensor_parallel_degree"),
                hf.getTensorParallelDegree(),
                seed.getTensorParallelDegree());
        files.agree(
                "the base model",
                List.of("base_model_name_or_path"),
                List.of("base_model_name_or_path"),
                hf.getBaseModelNameOrPath(),
                seed.getBaseModelNameOrPath());
        Builder b = seed.toBuilder();
        if (adapterFile.has("head_dim") || adapterFile.has("token_dim")) {
            b.headDim = hf.headDim;
        }
        b.optTaskType(hf.getTaskType());
        if (seed.getBaseModelNameOrPath() == null) {
            b.optBaseModelNameOrPath(hf.getBaseModelNameOrPath());
        }
        if (!seedFile.has("prefix_dropout")) {
            b.prefixDropout = hf.prefixDropout;
        }
        if (!seedFile.has("dtype")) {
            b.optDtype(hf.getDtype());
        }
        if (!seedFile.has("tensor_parallel_degree")) {
            b.optTensorParallelDegree(hf.getTensorParallelDegree());
        }
        return seedFile.build(b::build);
    }

    /**
     * Reads the config of a saved prefix: {@code adapter_config.json} and {@code
     * prefix_config.json} together when both are there (see {@link #read(ConfigPair)}), else the
     * one that is.
     *
     * @param dir an adapter directory or a config file
     * @return the config
     * @throws IOException if no config file can be read
     * @throws IllegalArgumentException if a file is malformed, the files disagree, or the adapter
     *     is not a prefix adapter
     */
    public static PrefixConfig fromPretrained(Path dir) throws IOException {
        PeftConfig config = PeftConfig.fromPretrained(dir);
        if (!(config instanceof PrefixConfig)) {
            throw new IllegalArgumentException(
                    dir + " holds a " + config.getPeftType() + " adapter, not a prefix adapter");
        }
        return (PrefixConfig) config;
    }

    /** The builder of {@link PrefixConfig}: {@code set*} is required, {@code opt*} optional. */
    public static final class Builder extends BaseBuilder<Builder> {

        int numPrefixTokens;
        int numHiddenLayers;
        int numAttentionHeads;
        int numKeyValueHeads;
        int hiddenSize;
        int headDim;
        boolean prefixProjection;
        int prefixProjectionHiddenSize;
        double prefixDropout;

        Builder() {}

        /** {@inheritDoc} */
        @Override
        protected Builder self() {
            return this;
        }

        /**
         * Takes the layer count, heads, kv heads, head size, width and tensor-parallel degree from
         * a model, so that the config cannot disagree with it.
         *
         * @param model the model the prefix is for
         * @return this builder
         */
        public Builder fromModel(CausalLanguageModel model) {
            optTensorParallelDegree(model.getShardGroup().getDegree());
            numHiddenLayers = model.getNumHiddenLayers();
            numAttentionHeads = model.getNumAttentionHeads();
            numKeyValueHeads = model.getNumKeyValueHeads();
            hiddenSize = model.getHiddenSize();
            headDim = model.getHeadDim();
            return this;
        }

        /**
         * Sets the number of prefix tokens.
         *
         * @param tokens {@code P &gt; 0}
         * @return this builder
         */
        public Builder setNumPrefixTokens(int tokens) {
            this.numPrefixTokens = tokens;
            return this;
        }

        /**
         * Sets the model's numbers by hand (prefer {@link #fromModel(CausalLanguageModel)}).
         *
         * @param layers decoder layers
         * @param heads query heads
         * @param kvHeads key/value heads
         * @param hidden the model's width
         * @return this builder
         */
        public Builder setModelSizes(int layers, int heads, int kvHeads, int hidden) {
            this.numHiddenLayers = layers;
            this.numAttentionHeads = heads;
            this.numKeyValueHeads = kvHeads;
            this.hiddenSize = hidden;
            return this;
        }

        /**
         * Sets the head size when it is not {@code hidden / heads}.
         *
         * @param headDim the head size
         * @return this builder
         */
        public Builder optHeadDim(int headDim) {
            this.headDim = headDim;
            return this;
        }

        /**
         * Puts the prefix through embedding [P, hidden] then Linear-Tanh-Linear.
         *
         * @param hiddenSize the projection's inner width, &gt; 0
         * @return this builder
         */
        public Builder optPrefixProjection(int hiddenSize) {
            this.prefixProjection = true;
            this.prefixProjectionHiddenSize = hiddenSize;
            return this;
        }

        /** Drops the projection: the prefix becomes a plain table of its output. */
        Builder withoutProjection() {
            this.prefixProjection = false;
            this.prefixProjectionHiddenSize = 0;
            return this;
        }

        /**
         * Sets dropout on the prefix in training.
         *
         * @param dropout a rate in [0, 1); default 0
         * @return this builder
         */
        public Builder optPrefixDropout(double dropout) {
            this.prefixDropout = dropout;
            return this;
        }

        /**
         * Validates and builds the config.
         *
         * @return the config
         * @throws IllegalArgumentException naming the invalid field and its range
         */
        public PrefixConfig build() {
            return new PrefixConfig(this);
        }
    }
}
