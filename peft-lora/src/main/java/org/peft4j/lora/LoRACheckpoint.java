package org.peft4j.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;

import org.peft4j.core.PeftModel;
import org.peft4j.core.io.NativeArrays;
import org.peft4j.core.io.SafetensorsReader;
import org.peft4j.core.io.SafetensorsWriter;
import org.peft4j.core.io.TensorInfo;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Saving and loading LoRA adapters in the Hugging Face PEFT format: {@code adapter_config.json} and
 * {@code adapter_model.safetensors} with keys {@code base_model.model.<path>.lora_A.weight} ({@code
 * [r, in]}) and {@code ...lora_B.weight} ({@code [out, r]}), plus trained biases and {@code
 * trainable_modules} parameters under {@code base_model.model.<parameter path>}.
 */
final class LoRACheckpoint {

    private static final int MAX_LISTED = 8;

    private LoRACheckpoint() {}

    static void save(LoRAModel model, Path dir) throws IOException {
        Map<String, NDArray> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, Parameter> entry : model.adapterState().entrySet()) {
            Parameter parameter = entry.getValue();
            if (!parameter.isInitialized()) {
                throw new IllegalStateException(
                        "parameter "
                                + entry.getKey()
                                + " is not initialised; initialise the model before saving");
            }
            tensors.put(PeftModel.KEY_PREFIX + entry.getKey(), parameter.getArray());
        }
        SafetensorsWriter.write(dir.resolve(PeftModel.WEIGHTS_FILE), tensors);
        model.getPeftConfig().savePretrained(dir);
    }

    static LoRAModel load(Block base, LoRAConfig config, Path dir) throws IOException {
        Path file = weightsFile(dir);
        try (SafetensorsReader reader = SafetensorsReader.open(file)) {
            LoRAModel model = new LoRAModel(base, config);
            try {
                Map<String, Parameter> state = model.adapterState();
                for (Map.Entry<String, Parameter> entry : state.entrySet()) {
                    if (!entry.getValue().isInitialized()) {
                        throw new IllegalStateException(
                                "cannot load "
                                        + file
                                        + ": the base model's parameter "
                                        + entry.getKey()
                                        + " is not initialised; load or initialise the base"
                                        + " model's weights first");
                    }
                }
                checkFits(file, reader.getTensors(), state);
                copy(reader, state);
                return model;
            } catch (IOException | RuntimeException e) {
                model.unload();
                throw e;
            }
        }
    }

    private static Path weightsFile(Path dir) throws IOException {
        Path file = dir.resolve(PeftModel.WEIGHTS_FILE);
        if (Files.isRegularFile(file)) {
            return file;
        }
        List<String> present = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            files.forEach(p -> present.add(p.getFileName().toString()));
        }
        String hint = "";
        if (present.contains("adapter_model.bin")
                || present.contains("lora_model_state.pdparams")) {
            hint =
                    "; pickled PyTorch/Paddle weights cannot be read safely from Java, save them"
                            + " as safetensors (e.g. with safetensors.torch.save_file) under that"
                            + " name";
        }
        throw new NoSuchFileException(
                file.toString(), null, "missing; the directory holds " + present + hint);
    }

    private static void checkFits(
            Path file, Map<String, TensorInfo> tensors, Map<String, Parameter> state) {
        List<String> problems = new ArrayList<>();
        for (Map.Entry<String, Parameter> entry : state.entrySet()) {
            String key = PeftModel.KEY_PREFIX + entry.getKey();
            Shape expected = entry.getValue().getShape();
            TensorInfo info = tensors.get(key);
            if (info == null) {
                problems.add("missing key " + key + " (expected shape " + expected + ')');
            } else if (!info.shape().equals(expected)) {
                problems.add(
                        "key "
                                + key
                                + " has shape "
                                + info.shape()
                                + " but the model expects "
                                + expected);
            }
        }
        for (String key : tensors.keySet()) {
            if (!key.startsWith(PeftModel.KEY_PREFIX)
                    || !state.containsKey(key.substring(PeftModel.KEY_PREFIX.length()))) {
                problems.add("unexpected key " + key);
            }
        }
        if (!problems.isEmpty()) {
            List<String> shown = problems.subList(0, Math.min(MAX_LISTED, problems.size()));
            String more =
                    problems.size() > MAX_LISTED
                            ? "; and " + (problems.size() - MAX_LISTED) + " more"
                            : "";
            throw new IllegalArgumentException(
                    file
                            + " does not fit the model and its adapter_config.json (r, "
                            + "target_modules, bias, trainable_modules): "
                            + String.join("; ", shown)
                            + more);
        }
    }

    private static void copy(SafetensorsReader reader, Map<String, Parameter> state)
            throws IOException {
        for (Map.Entry<String, Parameter> entry : state.entrySet()) {
            NDArray target = entry.getValue().getArray();
            try (NDManager scratch = target.getManager().newSubManager()) {
                NDArray loaded = reader.read(PeftModel.KEY_PREFIX + entry.getKey(), scratch);
                NativeArrays.copyInto(target, loaded);
            }
        }
    }
}
