package org.peft4j.lora;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.peft4j.core.PeftConfig;
import org.peft4j.core.config.JsonConfigReader;
import org.peft4j.core.tree.TargetModules;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * The immutable description of a LoRA adapter: the seed's {@code LoRAConfig} with Hugging Face's
 * field names where they differ.
 *
 * <table>
 *   <caption>Fields, their JSON names and defaults</caption>
 *   <tr><th>JSON</th><th>meaning</th><th>default</th></tr>
 *   <tr><td>r</td><td>rank of {@code A: [r, in]} and {@code B: [out, r]}, &gt; 0</td><td>8</td></tr>
 *   <tr><td>lora_alpha</td><td>scale numerator, &gt; 0</td><td>8</td></tr>
 *   <tr><td>target_modules</td><td>the Linear layers to adapt (see {@link TargetModules})</td>
 *       <td>required</td></tr>
 *   <tr><td>exclude_modules</td><td>paths never adapted, same matching</td><td>none</td></tr>
 *   <tr><td>lora_dropout</td><td>dropout on the LoRA branch's input in training, in [0, 1)</td>
 *       <td>0</td></tr>
 *   <tr><td>merge_weights</td><td>the seed's: merged in {@code eval()}, unmerged in {@code
 *       train()}</td><td>false</td></tr>
 *   <tr><td>bias (seed: trainable_bias)</td><td>{@link TrainableBias}</td><td>none</td></tr>
 *   <tr><td>trainable_modules</td><td>regexes over parameter paths that also train and are
 *       saved with the adapter</td><td>none</td></tr>
 *   <tr><td>use_rslora (seed: rslora)</td><td>scale {@code alpha / sqrt(r)} instead of {@code
 *       alpha / r}</td><td>false</td></tr>
 *   <tr><td>init_lora_weights</td><td>{@code true}, {@code "gaussian"} or {@code false}: {@link
 *       LoRAInit}</td><td>true</td></tr>
 *   <tr><td>dtype</td><td>type of {@code A} and {@code B}: float32 or float16</td>
 *       <td>float32</td></tr>
 *   <tr><td>tensor_parallel_degree</td><td>for peft-parallel</td><td>1</td></tr>
 * </table>
 */
public final class LoRAConfig extends PeftConfig {

    /** The {@code peft_type} of LoRA. */
    public static final String PEFT_TYPE = "LORA";

    /** The seed's (PaddleNLP's) config file name. */
    public static final String SEED_CONFIG_FILE = "lora_config.json";

    private final int r;
    private final double loraAlpha;
    private final TargetModules targetModules;
    private final TargetModules excludeModules;
    private final double loraDropout;
    private final boolean mergeWeights;
    private final TrainableBias trainableBias;
    private final List<String> trainableModules;
    private final List<Pattern> trainableModulePatterns;
    private final boolean useRslora;
    private final LoRAInit initLoraWeights;

    private LoRAConfig(Builder builder) {
        super(builder);
        if (builder.targetModules == null) {
            throw new IllegalArgumentException(
                    "target_modules is required: the Linear layers to adapt, e.g. \".*q_proj.*\"");
        }
        if (builder.r <= 0) {
            throw new IllegalArgumentException("r must be an integer > 0, got " + builder.r);
        }
        if (!(builder.loraAlpha > 0) || Double.isInfinite(builder.loraAlpha)) {
            throw new IllegalArgumentException(
                    "lora_alpha must be a finite number > 0, got " + builder.loraAlpha);
        }
        if (!(builder.loraDropout >= 0 && builder.loraDropout < 1)) {
            throw new IllegalArgumentException(
                    "lora_dropout must lie in [0, 1), got " + builder.loraDropout);
        }
        this.r = builder.r;
        this.loraAlpha = builder.loraAlpha;
        this.targetModules = builder.targetModules;
        this.excludeModules = builder.excludeModules;
        this.loraDropout = builder.loraDropout;
        this.mergeWeights = builder.mergeWeights;
        this.trainableBias = builder.trainableBias;
        this.trainableModules = builder.trainableModules;
        this.trainableModulePatterns = compile(builder.trainableModules);
        this.useRslora = builder.useRslora;
        this.initLoraWeights = builder.initLoraWeights;
    }

    private static List<Pattern> compile(List<String> regexes) {
        Pattern[] out = new Pattern[regexes.size()];
        for (int i = 0; i < out.length; i++) {
            try {
                out[i] = Pattern.compile(regexes.get(i));
            } catch (PatternSyntaxException e) {
                throw new IllegalArgumentException(
                        "trainable_modules entry \""
                                + regexes.get(i)
                                + "\" is not a valid regular expression: "
                                + e.getDescription(),
                        e);
            }
        }
        return List.of(out);
    }

    /**
     * Creates a builder.
     *
     * @return a builder with every optional field at its default
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Returns a builder holding this config's values, to derive a changed copy.
     *
     * @return a new builder
     */
    public Builder toBuilder() {
        Builder builder = new Builder();
        builder.targetModules = targetModules;
        builder.excludeModules = excludeModules;
        builder.r = r;
        builder.loraAlpha = loraAlpha;
        builder.loraDropout = loraDropout;
        builder.mergeWeights = mergeWeights;
        builder.trainableBias = trainableBias;
        builder.trainableModules = trainableModules;
        builder.useRslora = useRslora;
        builder.initLoraWeights = initLoraWeights;
        return builder.optTaskType(getTaskType())
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
     * Returns the rank.
     *
     * @return {@code r > 0}
     */
    public int getR() {
        return r;
    }

    /**
     * Returns the scale numerator.
     *
     * @return {@code alpha > 0}
     */
    public double getLoraAlpha() {
        return loraAlpha;
    }

    /**
     * Returns the factor {@code s} of the LoRA branch.
     *
     * @return {@code alpha / sqrt(r)} with rsLoRA, {@code alpha / r} otherwise
     */
    public double getScaling() {
        return useRslora ? loraAlpha / Math.sqrt(r) : loraAlpha / r;
    }

    /**
     * Returns the layers to adapt.
     *
     * @return the target matcher
     */
    public TargetModules getTargetModules() {
        return targetModules;
    }

    /**
     * Returns the layers never adapted.
     *
     * @return the exclusion matcher, or {@code null} for none
     */
    public TargetModules getExcludeModules() {
        return excludeModules;
    }

    /**
     * Returns the dropout rate on the LoRA branch's input during training.
     *
     * @return a rate in [0, 1)
     */
    public double getLoraDropout() {
        return loraDropout;
    }

    /**
     * Returns the seed's {@code merge_weights}: whether {@code eval()} merges and {@code train()}
     * unmerges.
     *
     * @return the flag
     */
    public boolean isMergeWeights() {
        return mergeWeights;
    }

    /**
     * Returns which biases train.
     *
     * @return the bias setting
     */
    public TrainableBias getTrainableBias() {
        return trainableBias;
    }

    /**
     * Returns the regexes of parameter paths that train and are saved with the adapter.
     *
     * @return an unmodifiable list, empty for none
     */
    public List<String> getTrainableModules() {
        return trainableModules;
    }

    /**
     * Tests whether a parameter path is selected by {@code trainable_modules} (whole-path match).
     *
     * @param parameterPath a path such as {@code model.norm.weight}
     * @return whether the parameter trains
     */
    public boolean isTrainableModule(String parameterPath) {
        for (Pattern pattern : trainableModulePatterns) {
            if (pattern.matcher(parameterPath).matches()) {
                return true;
            }
        }
        return false;
    }

    /**
     * Returns whether rank-stabilised scaling is on.
     *
     * @return the flag
     */
    public boolean isUseRslora() {
        return useRslora;
    }

    /**
     * Returns how {@code A} and {@code B} start.
     *
     * @return the initialisation
     */
    public LoRAInit getInitLoraWeights() {
        return initLoraWeights;
    }

    /** {@inheritDoc} */
    @Override
    protected void writeFields(ObjectNode json) {
        json.put("r", r);
        putNumber(json, "lora_alpha", loraAlpha);
        putModules(json, "target_modules", targetModules);
        if (excludeModules != null) {
            putModules(json, "exclude_modules", excludeModules);
        }
        putNumber(json, "lora_dropout", loraDropout);
        json.put("bias", trainableBias.hfName());
        json.put("use_rslora", useRslora);
        switch (initLoraWeights) {
            case GAUSSIAN:
                json.put("init_lora_weights", "gaussian");
                break;
            case RANDOM:
                json.put("init_lora_weights", false);
                break;
            default:
                json.put("init_lora_weights", true);
        }
        json.put("fan_in_fan_out", false);
        json.putNull("modules_to_save");
        json.put("merge_weights", mergeWeights);
        ArrayNode trainable = json.putArray("trainable_modules");
        trainableModules.forEach(trainable::add);
    }

    private static void putNumber(ObjectNode json, String key, double value) {
        if (value == Math.rint(value) && Math.abs(value) < 1e15) {
            json.put(key, (long) value);
        } else {
            json.put(key, value);
        }
    }

    private static void putModules(ObjectNode json, String key, TargetModules modules) {
        if (modules.isSingleRegex()) {
            json.put(key, modules.getEntries().get(0));
        } else {
            ArrayNode array = json.putArray(key);
            modules.getEntries().forEach(array::add);
        }
    }

    /**
     * Reads a LoRA config from JSON: Hugging Face's {@code adapter_config.json} or the seed's
     * {@code lora_config.json}.
     *
     * @param reader the JSON object
     * @return the config
     * @throws IllegalArgumentException if a field is invalid, or asks for a LoRA variant peft4j
     *     does not implement (DoRA, PiSSA, per-layer ranks, ...); the message names file and field
     */
    public static LoRAConfig read(JsonConfigReader reader) {
        String type = reader.optString("peft_type");
        if (type != null && !PEFT_TYPE.equals(type)) {
            throw reader.invalid("peft_type", "is \"" + type + "\", not \"" + PEFT_TYPE + "\"");
        }
        Builder builder = builder();
        builder.readShared(reader);
        JsonNode targets = reader.optNode("target_modules");
        if (targets != null) {
            builder.targetModules = readModules(reader, "target_modules", targets);
        }
        JsonNode excludes = reader.optNode("exclude_modules");
        if (excludes != null) {
            builder.excludeModules = readModules(reader, "exclude_modules", excludes);
        }
        Integer r = reader.optInt("r");
        if (r != null) {
            builder.optR(r);
        }
        Double alpha = reader.optDouble("lora_alpha");
        if (alpha != null) {
            builder.optLoraAlpha(alpha);
        }
        Double dropout = reader.optDouble("lora_dropout");
        if (dropout != null) {
            builder.optLoraDropout(dropout);
        }
        Boolean merge = reader.optBoolean("merge_weights");
        if (merge != null) {
            builder.optMergeWeights(merge);
        }
        readBias(reader, builder);
        List<String> trainable = reader.optStringList("trainable_modules");
        if (trainable != null) {
            builder.optTrainableModules(trainable);
        }
        readRslora(reader, builder);
        JsonNode init = reader.optNode("init_lora_weights");
        if (init != null) {
            builder.optInitLoraWeights(readInit(reader, init));
        }
        refuseVariants(reader);
        reader.warnAboutUnreadKeys();
        return reader.build(builder::build);
    }

    /**
     * Reads the config of a saved adapter: {@code adapter_config.json}, else the seed's {@code
     * lora_config.json}.
     *
     * @param dir an adapter directory or a config file
     * @return the config
     * @throws IOException if no config file can be read; the message lists what the directory holds
     * @throws IllegalArgumentException if the file is malformed, a field invalid, or the adapter
     *     not a LoRA adapter
     */
    public static LoRAConfig fromPretrained(Path dir) throws IOException {
        PeftConfig config = PeftConfig.fromPretrained(dir);
        if (!(config instanceof LoRAConfig)) {
            throw new IllegalArgumentException(
                    dir + " holds a " + config.getPeftType() + " adapter, not a LoRA adapter");
        }
        return (LoRAConfig) config;
    }

    private static TargetModules readModules(JsonConfigReader reader, String key, JsonNode node) {
        try {
            if (node.isTextual()) {
                return TargetModules.regex(node.textValue());
            }
            List<String> entries = reader.optStringList(key);
            return TargetModules.list(entries);
        } catch (IllegalArgumentException e) {
            throw reader.invalid(key, e.getMessage());
        }
    }

    private static void readBias(JsonConfigReader reader, Builder builder) {
        String hf = reader.optString("bias");
        String seed = reader.optString("trainable_bias");
        TrainableBias fromHf = hf == null ? null : TrainableBias.parse(hf);
        TrainableBias fromSeed = seed == null ? null : TrainableBias.parse(seed);
        if (hf != null && fromHf == null) {
            throw reader.invalid(
                    "bias", "must be \"none\", \"lora_only\" or \"all\", found \"" + hf + "\"");
        }
        if (seed != null && fromSeed == null) {
            throw reader.invalid(
                    "trainable_bias", "must be null, \"lora\" or \"all\", found \"" + seed + "\"");
        }
        if (fromHf != null && fromSeed != null && fromHf != fromSeed) {
            throw reader.invalid(
                    "trainable_bias",
                    "(\"" + seed + "\") disagrees with \"bias\" (\"" + hf + "\")");
        }
        TrainableBias bias = fromHf != null ? fromHf : fromSeed;
        if (bias != null) {
            builder.optTrainableBias(bias);
        }
    }

    private static void readRslora(JsonConfigReader reader, Builder builder) {
        Boolean hf = reader.optBoolean("use_rslora");
        Boolean seed = reader.optBoolean("rslora");
        if (hf != null && seed != null && !hf.equals(seed)) {
            throw reader.invalid("rslora", "disagrees with \"use_rslora\"");
        }
        Boolean value = hf != null ? hf : seed;
        if (value != null) {
            builder.optUseRslora(value);
        }
    }

    private static LoRAInit readInit(JsonConfigReader reader, JsonNode node) {
        if (node.isBoolean()) {
            return node.booleanValue() ? LoRAInit.KAIMING_UNIFORM : LoRAInit.RANDOM;
        }
        if (node.isTextual() && "gaussian".equals(node.textValue())) {
            return LoRAInit.GAUSSIAN;
        }
        throw reader.invalid(
                "init_lora_weights",
                "must be true, false or \"gaussian\", found "
                        + node
                        + " (other initialisations such as PiSSA or OLoRA change the base weights"
                        + " and are not implemented)");
    }

    private static void refuseVariants(JsonConfigReader reader) {
        reader.refuseIfSet("use_dora", "DoRA (weight-decomposed LoRA)");
        reader.refuseIfSet("fan_in_fan_out", "transposed (Conv1D) base weights");
        reader.refuseIfSet("layers_to_transform", "adapting only some layer indices");
        reader.refuseIfSet("layers_pattern", "adapting only some layer indices");
        reader.refuseIfSet("rank_pattern", "per-layer ranks");
        reader.refuseIfSet("alpha_pattern", "per-layer alphas");
        reader.refuseIfSet(
                "modules_to_save", "whole trained copies of modules (use trainable_modules)");
        reader.refuseIfSet("layer_replication", "layer replication");
        reader.refuseIfSet("megatron_config", "Megatron parallel layers");
        reader.refuseIfSet("use_mora", "MoRA");
        reader.refuseIfSet("lora_use_mixer", "MosLoRA");
        reader.refuseIfSet("pissa", "PiSSA initialisation");
        reader.refuseIfSet("enable_lora_list", "fused QKV layers with per-part LoRA");
        reader.ignore(
                "lora_plus_scale", "LoRA+ is an optimizer setting; set learning rates instead");
        reader.ignore("use_quick_lora", "a PaddleNLP kernel choice");
        reader.ignore("head_dim", "only used by PaddleNLP's fused QKV layers");
        reader.ignore("do_qat", "quantisation-aware training is not implemented");
        reader.ignore("loftq_config", "LoftQ initialisation applies only when creating an adapter");
        reader.ignore("eva_config", "EVA initialisation applies only when creating an adapter");
        reader.ignore("corda_config", "CorDA initialisation applies only when creating an adapter");
        reader.ignore("runtime_config", "informational");
        reader.ignore("megatron_core", "names the Megatron module, used only with megatron_config");
        reader.ignore("lora_bias", "a LoRA bias term is not implemented");
    }

    /** The builder of {@link LoRAConfig}: {@code set*} is required, {@code opt*} optional. */
    public static final class Builder extends BaseBuilder<Builder> {

        TargetModules targetModules;
        TargetModules excludeModules;
        int r = 8;
        double loraAlpha = 8;
        double loraDropout;
        boolean mergeWeights;
        TrainableBias trainableBias = TrainableBias.NONE;
        List<String> trainableModules = Collections.emptyList();
        boolean useRslora;
        LoRAInit initLoraWeights = LoRAInit.KAIMING_UNIFORM;

        Builder() {}

        /** {@inheritDoc} */
        @Override
        protected Builder self() {
            return this;
        }

        /**
         * Sets the layers to adapt as one regular expression that must match a whole path, as the
         * seed writes {@code target_modules=".*q_proj.*"}.
         *
         * @param regex the expression
         * @return this builder
         */
        public Builder setTargetModules(String regex) {
            this.targetModules = TargetModules.regex(regex);
            return this;
        }

        /**
         * Sets the layers to adapt as a list: regexes matching whole paths, or names matching a
         * path exactly or as its dotted suffix ({@code "q_proj"}).
         *
         * @param first the first entry
         * @param more further entries
         * @return this builder
         */
        public Builder setTargetModules(String first, String... more) {
            String[] all = new String[more.length + 1];
            all[0] = first;
            System.arraycopy(more, 0, all, 1, more.length);
            return setTargetModules(Arrays.asList(all));
        }

        /**
         * Sets the layers to adapt as a list (see {@link #setTargetModules(String, String...)}).
         *
         * @param entries the entries, at least one
         * @return this builder
         */
        public Builder setTargetModules(List<String> entries) {
            this.targetModules = TargetModules.list(entries);
            return this;
        }

        /**
         * Sets paths that are never adapted, matched as {@link #setTargetModules(List)} matches.
         *
         * @param entries the entries, at least one
         * @return this builder
         */
        public Builder optExcludeModules(List<String> entries) {
            this.excludeModules = TargetModules.list(entries);
            return this;
        }

        /**
         * Sets the rank.
         *
         * @param r an integer &gt; 0; default 8
         * @return this builder
         */
        public Builder optR(int r) {
            this.r = r;
            return this;
        }

        /**
         * Sets the scale numerator.
         *
         * @param loraAlpha a number &gt; 0; default 8
         * @return this builder
         */
        public Builder optLoraAlpha(double loraAlpha) {
            this.loraAlpha = loraAlpha;
            return this;
        }

        /**
         * Sets the dropout rate on the LoRA branch's input during training.
         *
         * @param loraDropout a rate in [0, 1); default 0
         * @return this builder
         */
        public Builder optLoraDropout(double loraDropout) {
            this.loraDropout = loraDropout;
            return this;
        }

        /**
         * Sets the seed's {@code merge_weights}: {@code eval()} merges, {@code train()} unmerges.
         *
         * @param mergeWeights the flag; default false
         * @return this builder
         */
        public Builder optMergeWeights(boolean mergeWeights) {
            this.mergeWeights = mergeWeights;
            return this;
        }

        /**
         * Sets which biases train.
         *
         * @param trainableBias the setting; default {@link TrainableBias#NONE}
         * @return this builder
         */
        public Builder optTrainableBias(TrainableBias trainableBias) {
            this.trainableBias = trainableBias;
            return this;
        }

        /**
         * Sets regexes over parameter paths that also train and are saved with the adapter.
         *
         * @param regexes whole-path regexes such as {@code "model\\.norm\\.weight"}
         * @return this builder
         */
        public Builder optTrainableModules(List<String> regexes) {
            this.trainableModules = List.copyOf(regexes);
            return this;
        }

        /**
         * Sets rank-stabilised scaling, {@code alpha / sqrt(r)}.
         *
         * @param useRslora the flag; default false
         * @return this builder
         */
        public Builder optUseRslora(boolean useRslora) {
            this.useRslora = useRslora;
            return this;
        }

        /**
         * Sets how {@code A} and {@code B} start.
         *
         * @param init the initialisation; default {@link LoRAInit#KAIMING_UNIFORM}
         * @return this builder
         */
        public Builder optInitLoraWeights(LoRAInit init) {
            this.initLoraWeights = init;
            return this;
        }

        /**
         * Validates and builds the config.
         *
         * @return the config
         * @throws IllegalArgumentException naming the invalid field and its allowed range
         */
        public LoRAConfig build() {
            return new LoRAConfig(this);
        }
    }
}
