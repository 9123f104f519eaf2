package org.peft4j.lora;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.peft4j.core.PeftConfig;
import org.peft4j.core.config.ConfigPair;
import org.peft4j.core.config.JsonConfigReader;
import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.tree.HuggingFaceTargets;
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
 * <p>Saved as two files, each with only its tool's fields: {@code adapter_config.json} (Hugging
 * Face PEFT's {@code LoraConfig}: {@code r}, {@code lora_alpha}, {@code target_modules}, {@code
 * lora_dropout}, {@code bias}, {@code use_rslora}, {@code init_lora_weights}, ...) and {@code
 * lora_config.json} (PaddleNLP's {@code LoRAConfig}: {@code r}, {@code lora_alpha}, {@code
 * target_modules}, {@code lora_dropout}, {@code trainable_bias}, {@code rslora}, {@code
 * merge_weights}, {@code trainable_modules}, {@code dtype}, {@code tensor_parallel_degree}, {@code
 * scaling}). {@code target_modules} is written for each tool's reading ({@link HuggingFaceTargets}):
 * names or one full-match regex for Hugging Face, full-match regexes for PaddleNLP.
 *
 * <table>
 *   <caption>Fields, their JSON names and defaults</caption>
 *   <tr><th>JSON</th><th>meaning</th><th>default</th></tr>
 *   <tr><td>r</td><td>rank of {@code A: [r, in]} and {@code B: [out, r]}, &gt; 0</td><td>8</td></tr>
 *   <tr><td>lora_alpha</td><td>scale numerator, &gt; 0</td><td>8</td></tr>
 *   <tr><td>target_modules</td><td>the Linear layers to adapt (see {@link TargetModules})</td>
 *       <td>required</td></tr>
 *   <tr><td>exclude_modules (Hugging Face only)</td><td>paths never adapted, same matching</td>
 *       <td>none</td></tr>
 *   <tr><td>lora_dropout</td><td>dropout on the LoRA branch's input in training, in [0, 1)</td>
 *       <td>0</td></tr>
 *   <tr><td>merge_weights (PaddleNLP only)</td><td>merged in {@code eval()}, unmerged in {@code
 *       train()}</td><td>false</td></tr>
 *   <tr><td>bias (PaddleNLP: trainable_bias)</td><td>{@link TrainableBias}</td><td>none</td></tr>
 *   <tr><td>trainable_modules (PaddleNLP only)</td><td>regexes over parameter paths that also
 *       train and are saved with the adapter</td><td>none</td></tr>
 *   <tr><td>use_rslora (PaddleNLP: rslora)</td><td>scale {@code alpha / sqrt(r)} instead of
 *       {@code alpha / r}</td><td>false</td></tr>
 *   <tr><td>init_lora_weights (Hugging Face only)</td><td>{@code true}, {@code "gaussian"} or
 *       {@code false}: {@link LoRAInit}</td><td>true</td></tr>
 *   <tr><td>dtype (PaddleNLP only)</td><td>type of {@code A} and {@code B}: float32 or float16</td>
 *       <td>float32</td></tr>
 *   <tr><td>tensor_parallel_degree (PaddleNLP only)</td><td>for peft-parallel</td><td>1</td></tr>
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
    public String getSeedConfigFile() {
        return SEED_CONFIG_FILE;
    }

    /**
     * Writes Hugging Face's {@code LoraConfig} fields. {@code target_modules} and {@code
     * exclude_modules} are written as {@link HuggingFaceTargets#forAdapterConfig(TargetModules)}
     * translates them; {@link LoRAModel#savePretrained(Path)} writes the adapted layers instead.
     *
     * @param json the object to add the fields to
     */
    @Override
    protected void writeFields(ObjectNode json) {
        writeFields(
                json,
                HuggingFaceTargets.forAdapterConfig(targetModules),
                excludeModules == null ? null : HuggingFaceTargets.forAdapterConfig(excludeModules));
    }

    private void writeFields(ObjectNode json, TargetModules targets, TargetModules excludes) {
        json.put("r", r);
        putNumber(json, "lora_alpha", loraAlpha);
        putModules(json, "target_modules", targets);
        if (excludes != null) {
            putModules(json, "exclude_modules", excludes);
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
    }

    /**
     * Returns {@code lora_config.json}: PaddleNLP's {@code LoRAConfig} fields, {@code
     * target_modules} as {@link HuggingFaceTargets#forPaddleNlpConfig(TargetModules)} translates
     * them, and {@code scaling}, which PaddleNLP writes beside them.
     *
     * @return a new JSON object
     * @throws IllegalArgumentException with {@code exclude_modules}, which PaddleNLP cannot
     *     express (save through {@link LoRAModel#savePretrained(Path)}, which writes the adapted
     *     layers), or with a target regex outside the subset Python reads alike
     */
    @Override
    public ObjectNode toSeedJson() {
        if (excludeModules != null) {
            throw new IllegalArgumentException(
                    "exclude_modules "
                            + excludeModules
                            + " cannot be written to lora_config.json: PaddleNLP's LoRAConfig has"
                            + " no such field, so PaddleNLP would adapt the excluded layers too;"
                            + " save the adapter with LoRAModel.savePretrained, which writes the"
                            + " adapted layers themselves");
        }
        return seedJson(HuggingFaceTargets.forPaddleNlpConfig(targetModules));
    }

    private ObjectNode seedJson(TargetModules targets) {
        ObjectNode json = newObject();
        json.put("base_model_name_or_path", getBaseModelNameOrPath());
        json.put("r", r);
        putNumber(json, "lora_alpha", loraAlpha);
        putModules(json, "target_modules", targets);
        ArrayNode trainable = json.putArray("trainable_modules");
        trainableModules.forEach(trainable::add);
        putNumber(json, "lora_dropout", loraDropout);
        json.put("merge_weights", mergeWeights);
        if (trainableBias == TrainableBias.NONE) {
            json.putNull("trainable_bias");
        } else {
            json.put("trainable_bias", trainableBias == TrainableBias.LORA ? "lora" : "all");
        }
        json.put("rslora", useRslora);
        json.put("tensor_parallel_degree", getTensorParallelDegree());
        json.put("dtype", dtypeName(getDtype()));
        json.put("scaling", getScaling());
        return json;
    }

    /**
     * Writes both files of a saved adapter with {@code target_modules} as given: what Hugging Face
     * PEFT's rules and PaddleNLP's read as the adapted layers ({@code exclude_modules} is then
     * folded into them and not written).
     */
    void savePretrained(Path dir, TargetModules adapterTargets, TargetModules seedTargets)
            throws IOException {
        ObjectNode adapter = sharedJson();
        writeFields(adapter, adapterTargets, null);
        String seed = text(seedJson(seedTargets));
        AtomicFiles.writeString(dir.resolve(SEED_CONFIG_FILE), seed);
        AtomicFiles.writeString(dir.resolve(CONFIG_FILE), text(adapter));
    }

    /** {@inheritDoc} */
    @Override
    protected void describeFields(ObjectNode json) {
        json.put("r", r);
        json.put("lora_alpha", loraAlpha);
        describeModules(json, "target_modules", targetModules);
        if (excludeModules != null) {
            describeModules(json, "exclude_modules", excludeModules);
        }
        json.put("lora_dropout", loraDropout);
        json.put("merge_weights", mergeWeights);
        json.put("bias", trainableBias.hfName());
        ArrayNode trainable = json.putArray("trainable_modules");
        trainableModules.forEach(trainable::add);
        json.put("use_rslora", useRslora);
        json.put("init_lora_weights", initLoraWeights.name());
    }

    private static void describeModules(ObjectNode json, String key, TargetModules modules) {
        putModules(json, key, modules);
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
        reader.ignore("loraga", "LoRA-GA initialisation applies only when creating an adapter");
        reader.ignore("lorapro", "LoRA-Pro is an optimizer setting");
        // PaddleNLP writes the scale it derives from lora_alpha, r and rslora, and ignores it on
        // read; so does peft4j
        reader.skip("scaling");
    }

    /**
     * Reads a LoRA config from both of its files, {@code adapter_config.json} and {@code
     * lora_config.json}: a setting stated in both (under either tool's name) must have one value,
     * a setting stated in one is taken from it. {@code target_modules} is taken from {@code
     * adapter_config.json}; {@link LoRAModel#fromPretrained(ai.djl.nn.Block, Path)} checks that
     * both files' {@code target_modules} select the same layers of the model.
     *
     * @param files the two files
     * @return the config
     * @throws IllegalArgumentException if a file is invalid, or the files disagree (naming both
     *     files, the keys and both values)
     */
    public static LoRAConfig read(ConfigPair files) {
        JsonConfigReader adapterFile = files.getAdapterConfig();
        JsonConfigReader seedFile = files.getSeedConfig();
        LoRAConfig adapter = read(adapterFile.fresh());
        LoRAConfig seed = read(seedFile.fresh());
        files.agree("the rank", List.of("r"), List.of("r"), adapter.r, seed.r);
        files.agree(
                "lora_alpha",
                List.of("lora_alpha"),
                List.of("lora_alpha"),
                adapter.loraAlpha,
                seed.loraAlpha);
        files.agree(
                "the dropout",
                List.of("lora_dropout"),
                List.of("lora_dropout"),
                adapter.loraDropout,
                seed.loraDropout);
        files.agree(
                "the trained biases",
                List.of("bias", "trainable_bias"),
                List.of("trainable_bias", "bias"),
                adapter.trainableBias,
                seed.trainableBias);
        files.agree(
                "rank-stabilised scaling",
                List.of("use_rslora", "rslora"),
                List.of("rslora", "use_rslora"),
                adapter.useRslora,
                seed.useRslora);
        files.agree(
                "merge_weights",
                List.of("merge_weights"),
                List.of("merge_weights"),
                adapter.mergeWeights,
                seed.mergeWeights);
        files.agree(
                "trainable_modules",
                List.of("trainable_modules"),
                List.of("trainable_modules"),
                adapter.trainableModules,
                seed.trainableModules);
        files.agree(
                "the adapter's dtype",
                List.of("dtype"),
                List.of("dtype"),
                adapter.getDtype(),
                seed.getDtype());
        files.agree(
                "tensor_parallel_degree",
                List.of("tensor_parallel_degree"),
                List.of("tensor_parallel_degree"),
                adapter.getTensorParallelDegree(),
                seed.getTensorParallelDegree());
        files.agree(
                "the base model",
                List.of("base_model_name_or_path"),
                List.of("base_model_name_or_path"),
                adapter.getBaseModelNameOrPath(),
                seed.getBaseModelNameOrPath());
        // the files agree where both speak; the union takes each setting from the file that states
        // it, target_modules from adapter_config.json (the readings differ, see HuggingFaceTargets)
        JsonConfigReader union =
                JsonConfigReader.union(
                        adapterFile.fresh(),
                        seedFile.without("target_modules"),
                        adapterFile.getSource() + " with " + seedFile.getSource());
        LoRAConfig merged = read(union);
        // a config saved alone writes a list of regexes into adapter_config.json as their
        // alternation; lora_config.json keeps the list, so the config reads back as it was built
        if (!merged.targetModules.equals(seed.targetModules)
                && merged.excludeModules == null
                && merged.targetModules.equals(adapterFormOrNull(seed.targetModules))) {
            Builder b = merged.toBuilder();
            b.targetModules = seed.targetModules;
            return b.build();
        }
        return merged;
    }

    private static TargetModules adapterFormOrNull(TargetModules targets) {
        try {
            return HuggingFaceTargets.forAdapterConfig(targets);
        } catch (IllegalArgumentException e) {
            return null;
        }
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
