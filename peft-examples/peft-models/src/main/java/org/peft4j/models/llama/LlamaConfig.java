package org.peft4j.models.llama;

import static org.peft4j.core.config.Checks.require;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.peft4j.core.config.JsonConfigReader;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * The architecture of a Llama-style decoder, read from a Hugging Face {@code config.json} or built
 * in code.
 *
 * <p>One config describes every {@link ModelFamily}: {@code model_type} {@code "llama"}, {@code
 * "mistral"}, {@code "qwen2"} and {@code "qwen3"} share Llama's decoder and differ by switches
 * (biases, a sliding window, per-head query/key norms) that this class holds. {@code hidden_act}
 * must be {@code "silu"}; rotary scaling of type {@code "llama3"} (Llama 3.1) and {@code "linear"}
 * is implemented, any other is refused, as is any field that would change the math and is not
 * implemented; the message names the key.
 */
public final class LlamaConfig {

    private final ModelFamily family;
    private final int hiddenSize;
    private final int intermediateSize;
    private final int numHiddenLayers;
    private final int numAttentionHeads;
    private final int numKeyValueHeads;
    private final int headDim;
    private final double rmsNormEps;
    private final double ropeTheta;
    private final int vocabSize;
    private final int maxPositionEmbeddings;
    private final boolean tieWordEmbeddings;
    private final boolean attentionBias;
    private final boolean mlpBias;
    private final int slidingWindow;
    private final int bosTokenId;
    private final int[] eosTokenIds;
    private final RopeScaling ropeScaling;
    private final int tensorParallelDegree;
    private final int tensorParallelRank;
    private final boolean tensorParallelOutput;

    private LlamaConfig(Builder b) {
        require(b.hiddenSize > 0, "hidden_size must be > 0, got " + b.hiddenSize);
        require(b.intermediateSize > 0, "intermediate_size must be > 0, got " + b.intermediateSize);
        require(b.numHiddenLayers > 0, "num_hidden_layers must be > 0, got " + b.numHiddenLayers);
        require(
                b.numAttentionHeads > 0,
                "num_attention_heads must be > 0, got " + b.numAttentionHeads);
        int kvHeads = b.numKeyValueHeads > 0 ? b.numKeyValueHeads : b.numAttentionHeads;
        require(
                b.numAttentionHeads % kvHeads == 0,
                "num_attention_heads ("
                        + b.numAttentionHeads
                        + ") must be a multiple of num_key_value_heads ("
                        + kvHeads
                        + ")");
        int dim = b.headDim > 0 ? b.headDim : b.hiddenSize / b.numAttentionHeads;
        require(
                b.headDim > 0 || b.hiddenSize % b.numAttentionHeads == 0,
                "hidden_size ("
                        + b.hiddenSize
                        + ") must be a multiple of num_attention_heads ("
                        + b.numAttentionHeads
                        + ") unless head_dim is given");
        require(dim % 2 == 0, "head_dim must be even for rotary embeddings, got " + dim);
        require(b.vocabSize > 0, "vocab_size must be > 0, got " + b.vocabSize);
        require(b.rmsNormEps > 0, "rms_norm_eps must be > 0, got " + b.rmsNormEps);
        require(b.ropeTheta > 0, "rope_theta must be > 0, got " + b.ropeTheta);
        require(
                b.maxPositionEmbeddings > 0,
                "max_position_embeddings must be > 0, got " + b.maxPositionEmbeddings);
        int degree = b.tensorParallelDegree;
        require(degree >= 1, "tensor_parallel_degree must be >= 1, got " + degree);
        require(
                b.tensorParallelRank >= 0 && b.tensorParallelRank < degree,
                "tensor_parallel_rank must lie in [0, "
                        + degree
                        + "), got "
                        + b.tensorParallelRank);
        require(
                b.slidingWindow == 0 || b.family == ModelFamily.MISTRAL,
                "sliding_window is Mistral's; set optModelFamily(ModelFamily.MISTRAL) or leave it"
                        + " out");
        require(b.slidingWindow >= 0, "sliding_window must be > 0, got " + b.slidingWindow);
        // each family's config.json has only its own switches: others could not be written back
        require(
                !b.mlpBias || b.family == ModelFamily.LLAMA,
                "mlp_bias is Llama's; " + b.family + " has no MLP biases");
        require(
                !b.attentionBias || b.family == ModelFamily.LLAMA || b.family == ModelFamily.QWEN3,
                "attention_bias is Llama's and Qwen3's; "
                        + b.family
                        + (b.family == ModelFamily.QWEN2
                                ? " has q/k/v biases and none on o by design"
                                : " has no attention biases"));
        requireSplit("num_attention_heads", b.numAttentionHeads, degree);
        requireSplit("num_key_value_heads", kvHeads, degree);
        requireSplit("intermediate_size", b.intermediateSize, degree);
        requireSplit("vocab_size", b.vocabSize, degree);
        this.family = b.family;
        this.hiddenSize = b.hiddenSize;
        this.intermediateSize = b.intermediateSize;
        this.numHiddenLayers = b.numHiddenLayers;
        this.numAttentionHeads = b.numAttentionHeads;
        this.numKeyValueHeads = kvHeads;
        this.headDim = dim;
        this.rmsNormEps = b.rmsNormEps;
        this.ropeTheta = b.ropeTheta;
        this.vocabSize = b.vocabSize;
        this.maxPositionEmbeddings = b.maxPositionEmbeddings;
        this.tieWordEmbeddings = b.tieWordEmbeddings;
        this.attentionBias = b.attentionBias;
        this.mlpBias = b.mlpBias;
        this.slidingWindow = b.slidingWindow;
        this.bosTokenId = b.bosTokenId;
        this.eosTokenIds = b.eosTokenIds.clone();
        this.ropeScaling = b.ropeScaling;
        this.tensorParallelDegree = degree;
        this.tensorParallelRank = b.tensorParallelRank;
        this.tensorParallelOutput = b.tensorParallelOutput;
    }

    private static void requireSplit(String key, int value, int degree) {
        require(
                value % degree == 0,
                key
                        + " = "
                        + value
                        + " cannot be split evenly across tensor_parallel_degree "
                        + degree
                        + "; choose a degree that divides the heads, key/value heads,"
                        + " intermediate size and vocabulary");
    }

    /**
     * Creates a builder with Llama's usual defaults (eps 1e-6, theta 10000, BOS 1, EOS 2).
     *
     * @return a builder; the sizes are required
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
        b.family = family;
        b.hiddenSize = hiddenSize;
        b.intermediateSize = intermediateSize;
        b.numHiddenLayers = numHiddenLayers;
        b.numAttentionHeads = numAttentionHeads;
        b.numKeyValueHeads = numKeyValueHeads;
        b.headDim = headDim;
        b.rmsNormEps = rmsNormEps;
        b.ropeTheta = ropeTheta;
        b.vocabSize = vocabSize;
        b.maxPositionEmbeddings = maxPositionEmbeddings;
        b.tieWordEmbeddings = tieWordEmbeddings;
        b.attentionBias = attentionBias;
        b.mlpBias = mlpBias;
        b.slidingWindow = slidingWindow;
        b.bosTokenId = bosTokenId;
        b.eosTokenIds = eosTokenIds.clone();
        b.ropeScaling = ropeScaling;
        b.tensorParallelDegree = tensorParallelDegree;
        b.tensorParallelRank = tensorParallelRank;
        b.tensorParallelOutput = tensorParallelOutput;
        return b;
    }

    /**
     * Reads a Hugging Face {@code config.json}.
     *
     * @param file the file
     * @return the config
     * @throws IOException if the file cannot be read
     * @throws IllegalArgumentException if its {@code model_type} is not a supported {@link
     *     ModelFamily}, a required key is missing, or a value is invalid or unsupported; the
     *     message names the file and key
     */
    public static LlamaConfig fromJson(Path file) throws IOException {
        return read(JsonConfigReader.read(file));
    }

    /**
     * Reads a Hugging Face config from a JSON object.
     *
     * @param r the object's fields
     * @return the config
     * @throws IllegalArgumentException if its {@code model_type} is not a supported {@link
     *     ModelFamily}, a required key is missing, or a value is invalid or unsupported; the
     *     message names the source and key
     */
    public static LlamaConfig read(JsonConfigReader r) {
        ModelFamily family = family(r);
        String act = r.optString("hidden_act");
        if (act != null && !"silu".equals(act)) {
            throw r.invalid("hidden_act", "is \"" + act + "\"; Llama's MLP needs \"silu\"");
        }
        Builder b = builder();
        family.readOwnKeys(r, b);
        b.hiddenSize = required(r, "hidden_size");
        b.intermediateSize = required(r, "intermediate_size");
        b.numHiddenLayers = required(r, "num_hidden_layers");
        b.numAttentionHeads = required(r, "num_attention_heads");
        b.vocabSize = required(r, "vocab_size");
        Integer kv = r.optInt("num_key_value_heads");
        b.numKeyValueHeads = kv == null ? b.numAttentionHeads : kv;
        Integer dim = r.optInt("head_dim");
        b.headDim = dim == null ? 0 : dim;
        Double eps = r.optDouble("rms_norm_eps");
        if (eps != null) {
            b.rmsNormEps = eps;
        }
        Double theta = r.optDouble("rope_theta");
        if (theta != null) {
            b.ropeTheta = theta;
        }
        Integer max = r.optInt("max_position_embeddings");
        if (max != null) {
            b.maxPositionEmbeddings = max;
        }
        Boolean tie = r.optBoolean("tie_word_embeddings");
        b.tieWordEmbeddings = tie != null && tie;
        Integer bos = r.optInt("bos_token_id");
        if (bos != null) {
            b.bosTokenId = bos;
        }
        JsonNode eos = r.optNode("eos_token_id");
        if (eos != null) {
            b.eosTokenIds = readIds(r, eos);
        }
        JsonNode scaling = r.optNode("rope_scaling");
        if (scaling != null) {
            b.ropeScaling = RopeScaling.read(r, scaling);
        }
        // PaddleNLP's keys; -1 means no tensor parallelism
        Integer degree = r.optInt("tensor_parallel_degree");
        if (degree != null && degree != -1) {
            b.tensorParallelDegree = degree;
        }
        Integer rank = r.optInt("tensor_parallel_rank");
        if (rank != null) {
            b.tensorParallelRank = rank;
        }
        Boolean output = r.optBoolean("tensor_parallel_output");
        if (output != null) {
            b.tensorParallelOutput = output;
        }
        for (String key :
                new String[] {
                    "torch_dtype",
                    "dtype",
                    "transformers_version",
                    "initializer_range",
                    "use_cache",
                    "pad_token_id",
                    "pretraining_tp",
                    "attention_dropout",
                    "_name_or_path"
                }) {
            r.skip(key);
        }
        r.warnAboutUnreadKeys();
        return r.build(b::build);
    }

    /** The family of {@code model_type}, cross-checked against {@code architectures}. */
    private static ModelFamily family(JsonConfigReader r) {
        String type = r.optString("model_type");
        ModelFamily family;
        try {
            family = ModelFamily.of(type);
        } catch (IllegalArgumentException e) {
            throw r.invalid(
                    "model_type",
                    (type == null ? "is missing" : "is \"" + type + "\"")
                            + "; supported: "
                            + ModelFamily.supported());
        }
        List<String> architectures = r.optStringList("architectures");
        if (architectures != null
                && !architectures.isEmpty()
                && !architectures.contains(family.getArchitecture())) {
            throw r.invalid(
                    "architectures",
                    "is "
                            + architectures
                            + " but model_type \""
                            + type
                            + "\" is "
                            + family.getArchitecture()
                            + "; peft4j loads causal language models only, and the two keys must"
                            + " agree");
        }
        return family;
    }

    private static int required(JsonConfigReader r, String key) {
        Integer value = r.optInt(key);
        if (value == null) {
            throw r.invalid(key, "is missing; a Llama config.json must give it");
        }
        return value;
    }

    private static int[] readIds(JsonConfigReader r, JsonNode node) {
        if (node.isIntegralNumber()) {
            return new int[] {node.intValue()};
        }
        if (node.isArray() && node.size() > 0) {
            int[] ids = new int[node.size()];
            for (int i = 0; i < ids.length; i++) {
                if (!node.get(i).isIntegralNumber()) {
                    throw r.invalid("eos_token_id", "must hold integers, found " + node);
                }
                ids[i] = node.get(i).intValue();
            }
            return ids;
        }
        throw r.invalid("eos_token_id", "must be an integer or a list of integers, found " + node);
    }

    /**
     * Returns the model family, Hugging Face's {@code model_type}.
     *
     * @return the family
     */
    public ModelFamily getModelFamily() {
        return family;
    }

    /**
     * Returns the hidden size {@code H}.
     *
     * @return {@code H}
     */
    public int getHiddenSize() {
        return hiddenSize;
    }

    /**
     * Returns the MLP's inner size.
     *
     * @return the intermediate size
     */
    public int getIntermediateSize() {
        return intermediateSize;
    }

    /**
     * Returns the number of decoder layers.
     *
     * @return {@code L}
     */
    public int getNumHiddenLayers() {
        return numHiddenLayers;
    }

    /**
     * Returns the number of query heads.
     *
     * @return the attention heads
     */
    public int getNumAttentionHeads() {
        return numAttentionHeads;
    }

    /**
     * Returns the number of key/value heads.
     *
     * @return the kv heads; equal to the query heads without grouped-query attention
     */
    public int getNumKeyValueHeads() {
        return numKeyValueHeads;
    }

    /**
     * Returns the size of one head.
     *
     * @return {@code head_dim}, by default {@code H / heads}
     */
    public int getHeadDim() {
        return headDim;
    }

    /**
     * Returns RMSNorm's epsilon.
     *
     * @return epsilon
     */
    public double getRmsNormEps() {
        return rmsNormEps;
    }

    /**
     * Returns the rotary base.
     *
     * @return theta
     */
    public double getRopeTheta() {
        return ropeTheta;
    }

    /**
     * Returns the vocabulary size.
     *
     * @return {@code V}
     */
    public int getVocabSize() {
        return vocabSize;
    }

    /**
     * Returns the trained context length: positions {@code 0 .. max-1} exist, and the model refuses
     * a longer sequence ({@link LlamaForCausalLM#getMaxPositions()}).
     *
     * @return the number of positions
     */
    public int getMaxPositionEmbeddings() {
        return maxPositionEmbeddings;
    }

    /**
     * Returns whether the output projection is the input embedding.
     *
     * @return true for tied embeddings (no {@code lm_head})
     */
    public boolean isTieWordEmbeddings() {
        return tieWordEmbeddings;
    }

    /**
     * Returns whether the attention projections have biases.
     *
     * @return {@code attention_bias}
     */
    public boolean isAttentionBias() {
        return attentionBias;
    }

    /**
     * Returns whether the MLP projections have biases.
     *
     * @return {@code mlp_bias}
     */
    public boolean isMlpBias() {
        return mlpBias;
    }

    /**
     * Returns whether the q, k and v projections have biases: with {@code attention_bias}, or
     * always in Qwen2.
     *
     * @return whether {@code q_proj}, {@code k_proj}, {@code v_proj} have a bias
     */
    public boolean isQkvBias() {
        return attentionBias || family.hasQkvBias();
    }

    /**
     * Returns whether each head's queries and keys pass an RMSNorm over {@code head_dim} (children
     * {@code q_norm}, {@code k_norm} of the attention) before the rotary embedding, as in Qwen3.
     *
     * @return whether the attention has {@code q_norm} and {@code k_norm}
     */
    public boolean isQkNorm() {
        return family.hasQkNorm();
    }

    /**
     * Returns Mistral's attention window: query {@code i} attends key {@code j} only if {@code i -
     * window < j <= i} (positions in the cache, prefix included), in training, full recompute and
     * cached generation alike.
     *
     * @return the window, or 0 for none
     */
    public int getSlidingWindow() {
        return slidingWindow;
    }

    /**
     * Returns the beginning-of-sequence id.
     *
     * @return the BOS id
     */
    public int getBosTokenId() {
        return bosTokenId;
    }

    /**
     * Returns the end-of-sequence ids (Llama 3 has several).
     *
     * @return a copy of the EOS ids
     */
    public int[] getEosTokenIds() {
        return eosTokenIds.clone();
    }

    /**
     * Returns the rotary scaling.
     *
     * @return the scaling, or {@code null} for none
     */
    public RopeScaling getRopeScaling() {
        return ropeScaling;
    }

    /**
     * Returns over how many ranks the model's layers are split (PaddleNLP's {@code
     * tensor_parallel_degree}).
     *
     * @return {@code T >= 1}
     */
    public int getTensorParallelDegree() {
        return tensorParallelDegree;
    }

    /**
     * Returns which part of the split layers this process holds.
     *
     * @return a rank in {@code [0, T)}
     */
    public int getTensorParallelRank() {
        return tensorParallelRank;
    }

    /**
     * Returns whether each rank keeps its part of the logits ({@code [B, T, V/T]}) rather than
     * gathering them so that every rank sees the single-process output.
     *
     * @return PaddleNLP's {@code tensor_parallel_output}; default false
     */
    public boolean isTensorParallelOutput() {
        return tensorParallelOutput;
    }

    /**
     * Returns the config as Hugging Face's {@code config.json} writes it (the tensor-parallel
     * settings, which describe a process and not the model, are left out).
     *
     * @return a new JSON object
     */
    public ObjectNode toJson() {
        ObjectNode json = new ObjectMapper().createObjectNode();
        json.putArray("architectures").add(family.getArchitecture());
        json.put("model_type", family.getModelType());
        json.put("hidden_size", hiddenSize);
        json.put("intermediate_size", intermediateSize);
        json.put("num_hidden_layers", numHiddenLayers);
        json.put("num_attention_heads", numAttentionHeads);
        json.put("num_key_value_heads", numKeyValueHeads);
        json.put("head_dim", headDim);
        json.put("vocab_size", vocabSize);
        json.put("max_position_embeddings", maxPositionEmbeddings);
        json.put("rms_norm_eps", rmsNormEps);
        json.put("rope_theta", ropeTheta);
        json.put("hidden_act", "silu");
        json.put("tie_word_embeddings", tieWordEmbeddings);
        family.writeOwnKeys(this, json);
        json.put("bos_token_id", bosTokenId);
        if (eosTokenIds.length == 1) {
            json.put("eos_token_id", eosTokenIds[0]);
        } else {
            ArrayNode eos = json.putArray("eos_token_id");
            for (int id : eosTokenIds) {
                eos.add(id);
            }
        }
        if (ropeScaling != null) {
            ObjectNode scaling = json.putObject("rope_scaling");
            scaling.put("rope_type", ropeScaling.type());
            scaling.put("factor", ropeScaling.factor());
            scaling.put("low_freq_factor", ropeScaling.lowFreqFactor());
            scaling.put("high_freq_factor", ropeScaling.highFreqFactor());
            scaling.put("original_max_position_embeddings", ropeScaling.originalMaxPositions());
        }
        json.put("torch_dtype", "float32");
        return json;
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "LlamaConfig("
                + family.getModelType()
                + ", hidden="
                + hiddenSize
                + ", intermediate="
                + intermediateSize
                + ", layers="
                + numHiddenLayers
                + ", heads="
                + numAttentionHeads
                + ", kvHeads="
                + numKeyValueHeads
                + ", headDim="
                + headDim
                + ", vocab="
                + vocabSize
                + ", tied="
                + tieWordEmbeddings
                + ", eos="
                + Arrays.toString(eosTokenIds)
                + (tensorParallelDegree > 1
                        ? ", tensorParallel=" + tensorParallelRank + "/" + tensorParallelDegree
                        : "")
                + ')';
    }

    /** The builder of {@link LlamaConfig}: {@code set*} is required, {@code opt*} optional. */
    public static final class Builder {

        int hiddenSize;
        int intermediateSize;
        int numHiddenLayers;
        int numAttentionHeads;
        int numKeyValueHeads;
        int headDim;
        double rmsNormEps = 1e-6;
        double ropeTheta = 10000;
        int vocabSize;
        int maxPositionEmbeddings = 2048;
        boolean tieWordEmbeddings;
        boolean attentionBias;
        boolean mlpBias;
        int bosTokenId = 1;
        int[] eosTokenIds = {2};
        ModelFamily family = ModelFamily.LLAMA;
        int slidingWindow;
        RopeScaling ropeScaling;
        int tensorParallelDegree = 1;
        int tensorParallelRank;
        boolean tensorParallelOutput;

        Builder() {}

        /**
         * Sets the sizes every Llama needs.
         *
         * @param hidden the hidden size
         * @param intermediate the MLP's inner size
         * @param layers the number of decoder layers
         * @param heads the number of query heads
         * @param kvHeads the number of key/value heads
         * @param vocab the vocabulary size
         * @return this builder
         */
        public Builder setSizes(
                int hidden, int intermediate, int layers, int heads, int kvHeads, int vocab) {
            this.hiddenSize = hidden;
            this.intermediateSize = intermediate;
            this.numHiddenLayers = layers;
            this.numAttentionHeads = heads;
            this.numKeyValueHeads = kvHeads;
            this.vocabSize = vocab;
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
         * Sets the model family, whose switches (Qwen2's q/k/v biases, Qwen3's q/k norms) follow.
         *
         * @param family the family; default {@link ModelFamily#LLAMA}
         * @return this builder
         */
        public Builder optModelFamily(ModelFamily family) {
            this.family = Objects.requireNonNull(family, "family");
            return this;
        }

        /**
         * Sets biases on all four attention projections (Llama's and Qwen3's {@code
         * attention_bias}).
         *
         * @param bias whether q, k, v and o have biases; default false
         * @return this builder
         */
        public Builder optAttentionBias(boolean bias) {
            this.attentionBias = bias;
            return this;
        }

        /**
         * Sets biases on the MLP's projections (Llama's {@code mlp_bias}).
         *
         * @param bias whether gate, up and down have biases; default false
         * @return this builder
         */
        public Builder optMlpBias(boolean bias) {
            this.mlpBias = bias;
            return this;
        }

        /**
         * Sets Mistral's attention window ({@link LlamaConfig#getSlidingWindow()}).
         *
         * @param window the window, &gt; 0, or 0 for none (default); needs {@link
         *     ModelFamily#MISTRAL}
         * @return this builder
         */
        public Builder optSlidingWindow(int window) {
            this.slidingWindow = window;
            return this;
        }

        /**
         * Sets RMSNorm's epsilon.
         *
         * @param eps the epsilon; default 1e-6
         * @return this builder
         */
        public Builder optRmsNormEps(double eps) {
            this.rmsNormEps = eps;
            return this;
        }

        /**
         * Sets the rotary base.
         *
         * @param theta the base; default 10000
         * @return this builder
         */
        public Builder optRopeTheta(double theta) {
            this.ropeTheta = theta;
            return this;
        }

        /**
         * Sets the trained context length.
         *
         * @param max the number of positions, &gt; 0; default 2048
         * @return this builder
         */
        public Builder optMaxPositionEmbeddings(int max) {
            this.maxPositionEmbeddings = max;
            return this;
        }

        /**
         * Sets tied embeddings.
         *
         * @param tie whether the output projection is the input embedding; default false
         * @return this builder
         */
        public Builder optTieWordEmbeddings(boolean tie) {
            this.tieWordEmbeddings = tie;
            return this;
        }

        /**
         * Sets the special token ids.
         *
         * @param bos the BOS id; default 1
         * @param eos the EOS ids; default {2}
         * @return this builder
         */
        public Builder optSpecialTokens(int bos, int... eos) {
            this.bosTokenId = bos;
            this.eosTokenIds = eos.clone();
            return this;
        }

        /**
         * Sets rotary scaling.
         *
         * @param scaling the scaling, or {@code null} for none (default)
         * @return this builder
         */
        public Builder optRopeScaling(RopeScaling scaling) {
            this.ropeScaling = scaling;
            return this;
        }

        /**
         * Splits the model's layers across ranks: q/k/v/gate/up by output features, o/down by input
         * features, heads and key/value heads with them.
         *
         * @param degree the number of ranks {@code T}; default 1
         * @param rank this process's rank in {@code [0, T)}
         * @param output whether each rank keeps its part of the logits; default false (gathered)
         * @return this builder
         */
        public Builder optTensorParallel(int degree, int rank, boolean output) {
            this.tensorParallelDegree = degree;
            this.tensorParallelRank = rank;
            this.tensorParallelOutput = output;
            return this;
        }

        /**
         * Validates and builds the config.
         *
         * @return the config
         * @throws IllegalArgumentException naming the invalid key
         */
        public LlamaConfig build() {
            return new LlamaConfig(this);
        }
    }
}
