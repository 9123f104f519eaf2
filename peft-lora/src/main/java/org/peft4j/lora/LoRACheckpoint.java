package org.peft4j.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;

import org.peft4j.core.PeftConfig;
import org.peft4j.core.PeftModel;
import org.peft4j.core.config.ConfigPair;
import org.peft4j.core.config.JsonConfigReader;
import org.peft4j.core.io.NativeArrays;
import org.peft4j.core.io.paddle.StagedWeights;
import org.peft4j.core.parallel.ShardedCheckpoint;
import org.peft4j.core.parallel.Sharding;
import org.peft4j.core.parallel.Shardings;
import org.peft4j.core.tree.BlockPaths;
import org.peft4j.core.tree.HuggingFaceTargets;
import org.peft4j.core.tree.TargetModules;
import org.peft4j.lora.paddle.PaddleLoRAFiles;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Saving and loading LoRA adapters in the Hugging Face PEFT format: {@code adapter_config.json}
 * (beside PaddleNLP's {@code lora_config.json}, see {@link LoRAConfig}) and {@code
 * adapter_model.safetensors} with keys {@code base_model.model.<path>.lora_A.weight} ({@code
 * [r, in]}) and {@code ...lora_B.weight} ({@code [out, r]}), plus trained biases and {@code
 * trainable_modules} parameters under {@code base_model.model.<parameter path>}. A tensor-parallel
 * model saves merged (the same file) or one file per rank, see {@link ShardedCheckpoint}. A save
 * replaces the directory's adapter files as a whole ({@link PeftModel#savePretrained}).
 */
final class LoRACheckpoint {

    private static final String HINT =
            "its adapter_config.json (r, target_modules, bias, trainable_modules)";

    private LoRACheckpoint() {}

    /**
     * Saves the named adapters into a staging directory that then replaces {@code target} as a
     * whole: {@code default} at its root, the others in subfolders named after them. The old
     * directory's root adapter files go only when {@code default} is written.
     */
    static void save(LoRAModel model, Path target, boolean mergeTensorParallel, List<String> names)
            throws IOException {
        boolean root = names.contains(LoRAModel.DEFAULT_ADAPTER);
        ShardedCheckpoint.replaceDirectory(
                target,
                Shardings.of(model, savedState(model, names.get(0))),
                name -> !root || !PeftModel.isAdapterFile(name),
                dir -> {
                    for (String name : names) {
                        Path into =
                                name.equals(LoRAModel.DEFAULT_ADAPTER) ? dir : dir.resolve(name);
                        Files.createDirectories(into);
                        write(model, name, into, mergeTensorParallel);
                    }
                });
    }

    private static void write(LoRAModel model, String name, Path dir, boolean mergeTensorParallel)
            throws IOException {
        Map<String, Parameter> state = savedState(model, name);
        Map<String, NDArray> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, Parameter> entry : state.entrySet()) {
            Parameter parameter = entry.getValue();
            if (!parameter.isInitialized()) {
                throw new IllegalStateException(
                        "parameter "
                                + entry.getKey()
                                + " is not initialised; initialise the model before saving");
            }
            tensors.put(entry.getKey(), parameter.getArray());
        }
        Map<String, Sharding> shardings = Shardings.of(model, state);
        LoRAConfig config = model.getPeftConfig(name);
        LoRAConfig saved =
                mergeTensorParallel || shardings.isEmpty()
                        ? config.toBuilder().optTensorParallelDegree(1).build()
                        : config;
        // target_modules as the tools that read each file select layers: the adapted ones
        Set<String> adapted = model.getLoRALayers(name).keySet();
        List<String> modulePaths = new ArrayList<>();
        for (String path : BlockPaths.blocks(model.getBaseModel()).keySet()) {
            if (adapted.stream().noneMatch(a -> path.startsWith(a + '.'))) {
                modulePaths.add(path);
            }
        }
        TargetModules forHf =
                HuggingFaceTargets.forAdapterConfig(config.getTargetModules(), adapted, modulePaths);
        TargetModules forPaddle =
                HuggingFaceTargets.forPaddleNlpConfig(
                        config.getTargetModules(), forHf, adapted, modulePaths);
        ShardedCheckpoint.save(
                dir,
                PeftModel.WEIGHTS_FILE,
                tensors,
                shardings,
                mergeTensorParallel,
                () -> saved.savePretrained(dir, forHf, forPaddle));
    }

    /**
     * Refuses a directory whose two config files select different layers of the base model: each
     * tool would adapt other layers than the other.
     */
    private static void checkTargetsAgree(Block base, LoRAConfig config, Path dir)
            throws IOException {
        Path adapterFile = dir.resolve(PeftConfig.CONFIG_FILE);
        Path seedFile = dir.resolve(LoRAConfig.SEED_CONFIG_FILE);
        if (!Files.isRegularFile(adapterFile) || !Files.isRegularFile(seedFile)) {
            return;
        }
        JsonConfigReader seedReader = JsonConfigReader.read(seedFile);
        LoRAConfig seed = LoRAConfig.read(seedReader);
        Set<String> byAdapter =
                LoRATargets.select(base, config.getTargetModules(), config.getExcludeModules());
        Set<String> bySeed = LoRATargets.select(base, seed.getTargetModules(), null);
        if (byAdapter.equals(bySeed)) {
            return;
        }
        Set<String> onlyAdapter = new LinkedHashSet<>(byAdapter);
        onlyAdapter.removeAll(bySeed);
        Set<String> onlySeed = new LinkedHashSet<>(bySeed);
        onlySeed.removeAll(byAdapter);
        throw ConfigPair.of(JsonConfigReader.read(adapterFile), seedReader)
                .disagreement(
                        "the layers to adapt in the "
                                + base.getClass().getSimpleName()
                                + " (only the first selects "
                                + sample(onlyAdapter)
                                + ", only the second "
                                + sample(onlySeed)
                                + ")",
                        "\"target_modules\": " + config.getTargetModules(),
                        "\"target_modules\": " + seed.getTargetModules());
    }

    private static String sample(Set<String> paths) {
        if (paths.isEmpty()) {
            return "nothing";
        }
        List<String> first = new ArrayList<>(paths).subList(0, Math.min(3, paths.size()));
        return first + (paths.size() > 3 ? " and " + (paths.size() - 3) + " more" : "");
    }

    static LoRAModel load(Block base, LoRAConfig config, Path dir) throws IOException {
        checkTargetsAgree(base, config, dir);
        LoRAModel model = new LoRAModel(base, config);
        try {
            loadWeights(model, LoRAModel.DEFAULT_ADAPTER, dir);
            return model;
        } catch (IOException | RuntimeException e) {
            model.unload();
            throw e;
        }
    }

    /**
     * Reads an adapter's saved weights into its parameters, every key and shape checked against
     * the parameters' current shapes before the first is overwritten.
     */
    static void loadWeights(LoRAModel model, String name, Path dir) throws IOException {
        Map<String, Parameter> state = savedState(model, name);
        Map<String, Shape> shapes = new LinkedHashMap<>();
        for (Map.Entry<String, Parameter> entry : state.entrySet()) {
            if (!entry.getValue().isInitialized()) {
                throw new IllegalStateException(
                        "cannot load the adapter in "
                                + dir
                                + ": the base model's parameter "
                                + entry.getKey().substring(PeftModel.KEY_PREFIX.length())
                                + " is not initialised; load or initialise the base model's"
                                + " weights first");
            }
            shapes.put(entry.getKey(), entry.getValue().getArray().getShape());
        }
        NDManager owner = state.values().iterator().next().getArray().getManager();
        int degree = model.getPeftConfig(name).getTensorParallelDegree();
        // PaddleNLP's files are read through their Hugging Face form, checked as HF's are
        try (NDManager scratch = owner.newSubManager();
                StagedWeights weights = PaddleLoRAFiles.stage(dir, degree, scratch)) {
            Map<String, NDArray> loaded =
                    ShardedCheckpoint.load(
                            weights.getDir(),
                            PeftModel.WEIGHTS_FILE,
                            shapes,
                            Shardings.of(model, state),
                            scratch,
                            HINT);
            loaded.forEach((key, value) -> NativeArrays.copyInto(state.get(key).getArray(), value));
        }
    }

    /** An adapter's parameters by saved key: {@code base_model.model.} + logical path. */
    private static Map<String, Parameter> savedState(LoRAModel model, String name) {
        Map<String, Parameter> state = new LinkedHashMap<>();
        model.adapterState(name).forEach((path, p) -> state.put(PeftModel.KEY_PREFIX + path, p));
        return state;
    }
}
