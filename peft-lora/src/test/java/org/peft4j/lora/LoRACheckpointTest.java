package org.peft4j.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.U;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;
import static org.peft4j.core.testing.ArrayAssertions.assertWithin;
import static org.peft4j.core.testing.ArrayAssertions.floats;
import static org.peft4j.lora.TestModels.forward;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.io.SafetensorsFormatException;
import org.peft4j.core.io.SafetensorsReader;
import org.peft4j.core.io.SafetensorsWriter;
import org.peft4j.core.tree.BlockPaths;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

class LoRACheckpointTest {

    @TempDir Path dir;

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    private static LoRAConfig.Builder config() {
        return LoRAConfig.builder().setTargetModules("0", "2", "4").optR(2).optLoraAlpha(4);
    }

    private LoRAModel trained(LoRAConfig config) {
        LoRAModel model = new LoRAModel(TestModels.mlp(manager, 1), config);
        for (LoRALinear layer : model.getLoRALayers().values()) {
            layer.getLoraB().getArray().addi(manager.randomNormal(layer.getLoraB().getShape()));
        }
        return model;
    }

    /** Reads the header of a safetensors file by hand: name to [dtype, shape]. */
    private static Map<String, String> header(Path file) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        long length = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        JsonNode json =
                new ObjectMapper()
                        .readTree(new String(bytes, 8, (int) length, StandardCharsets.UTF_8));
        Map<String, String> out = new LinkedHashMap<>();
        Iterator<Map.Entry<String, JsonNode>> fields = json.fields();
        while (fields.hasNext()) {
            Map.Entry<String, JsonNode> field = fields.next();
            if (!field.getKey().equals("__metadata__")) {
                out.put(
                        field.getKey(),
                        field.getValue().get("dtype").asText() + field.getValue().get("shape"));
            }
        }
        return out;
    }

    /** Every parameter's values by path, in float32 whatever its type. */
    private static Map<String, float[]> snapshot(Block block) {
        Map<String, float[]> values = new LinkedHashMap<>();
        BlockPaths.parameters(block).forEach((path, p) -> values.put(path, floats(p.getArray())));
        return values;
    }

    /**
     * Asserts that a loaded model holds the saved one's parameters bit for bit: the adapter (and
     * trained biases) are copied through the file, the base weights are drawn from the same seed.
     */
    private static void assertSameParameters(LoRAModel saved, LoRAModel loaded) {
        Map<String, float[]> expected = snapshot(saved.getBaseModel());
        Map<String, float[]> actual = snapshot(loaded.getBaseModel());
        assertEquals(expected.keySet(), actual.keySet());
        expected.forEach(
                (path, values) ->
                        assertSameBits(
                                values,
                                actual.get(path),
                                path + ": saved and loaded, or drawn from the same seed"));
    }

    private static boolean untouched(Block base) {
        return BlockPaths.blocks(base).values().stream().noneMatch(b -> b instanceof LoRALinear);
    }

    @Test
    void savesHuggingFaceKeysAndShapesAndLoadsTheSameOutputs() throws IOException {
        LoRAModel model = trained(config().optTrainableBias(TrainableBias.LORA).build());
        NDArray x = manager.randomNormal(new Shape(6, TestModels.IN));
        // scaling alpha / r = 4 / 2
        Reference.Expected expected =
                Reference.mlp(snapshot(model.getBaseModel()), 2, x.toFloatArray(), 6, true, U);
        assertWithin(
                expected.value,
                forward(model, manager, x).toFloatArray(),
                expected.bound,
                "the saved model");
        model.savePretrained(dir);

        Map<String, String> header = header(dir.resolve("adapter_model.safetensors"));
        Map<String, String> want = new LinkedHashMap<>();
        want.put("base_model.model.0.lora_A.weight", "F32[2,8]");
        want.put("base_model.model.0.lora_B.weight", "F32[64,2]");
        want.put("base_model.model.2.lora_A.weight", "F32[2,64]");
        want.put("base_model.model.2.lora_B.weight", "F32[64,2]");
        want.put("base_model.model.4.lora_A.weight", "F32[2,64]");
        want.put("base_model.model.4.lora_B.weight", "F32[4,2]");
        want.put("base_model.model.0.bias", "F32[64]");
        want.put("base_model.model.2.bias", "F32[64]");
        want.put("base_model.model.4.bias", "F32[4]");
        assertEquals(want, header);
        JsonNode config = new ObjectMapper().readTree(dir.resolve("adapter_config.json").toFile());
        assertEquals("LORA", config.get("peft_type").asText());
        assertEquals(2, config.get("r").asInt());
        assertEquals("lora_only", config.get("bias").asText());

        SequentialBlock fresh = TestModels.mlp(manager, 1);
        LoRAModel loaded = LoRAModel.fromPretrained(fresh, dir);
        assertSameParameters(model, loaded);
        // the same parameters, so the same exact output; a second evaluation is not bitwise
        // guaranteed (MKL's summation order depends on the buffers), but within the same bound
        assertWithin(
                expected.value,
                forward(loaded, manager, x).toFloatArray(),
                expected.bound,
                "the loaded model");
    }

    @Test
    void float16AdaptersAreSavedAsF16() throws IOException {
        LoRAModel model = trained(config().optDtype(DataType.FLOAT16).build());
        model.savePretrained(dir);
        assertTrue(
                header(dir.resolve("adapter_model.safetensors"))
                        .get("base_model.model.0.lora_A.weight")
                        .startsWith("F16"));
        LoRAModel loaded = LoRAModel.fromPretrained(TestModels.mlp(manager, 1), dir);
        assertEquals(
                DataType.FLOAT16,
                loaded.getLoRALayers().get("0").getLoraA().getArray().getDataType());
        assertSameParameters(model, loaded);
        NDArray x = manager.randomNormal(new Shape(3, TestModels.IN));
        Reference.Expected expected =
                Reference.mlp(
                        snapshot(model.getBaseModel()),
                        2,
                        x.toFloatArray(),
                        3,
                        true,
                        Reference.U16);
        assertWithin(
                expected.value,
                forward(model, manager, x).toFloatArray(),
                expected.bound,
                "the saved model, float16 branches");
        assertWithin(
                expected.value,
                forward(loaded, manager, x).toFloatArray(),
                expected.bound,
                "the loaded model, float16 branches");
    }

    /** Rewrites the saved adapter file with one change. */
    private void rewrite(java.util.function.Consumer<Map<String, NDArray>> change)
            throws IOException {
        Path file = dir.resolve("adapter_model.safetensors");
        Map<String, NDArray> tensors = new LinkedHashMap<>();
        try (SafetensorsReader reader = SafetensorsReader.open(file)) {
            for (String name : reader.getTensors().keySet()) {
                tensors.put(name, reader.read(name, manager));
            }
        }
        change.accept(tensors);
        SafetensorsWriter.write(file, tensors);
    }

    private IllegalArgumentException assertLoadFails(SequentialBlock base, String... fragments) {
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class, () -> LoRAModel.fromPretrained(base, dir));
        for (String fragment : fragments) {
            assertTrue(e.getMessage().contains(fragment), e.getMessage());
        }
        assertTrue(untouched(base), "a failed load leaves the base model as it was");
        return e;
    }

    @Test
    void missingExtraAndMisshapenKeysFailNamingTheKey() throws IOException {
        trained(config().build()).savePretrained(dir);
        rewrite(t -> t.remove("base_model.model.2.lora_B.weight"));
        assertLoadFails(
                TestModels.mlp(manager, 1),
                "missing key base_model.model.2.lora_B.weight",
                "(64, 2)");

        trained(config().build()).savePretrained(dir);
        rewrite(t -> t.put("base_model.model.9.lora_A.weight", manager.zeros(new Shape(2, 8))));
        assertLoadFails(
                TestModels.mlp(manager, 1), "unexpected key base_model.model.9.lora_A.weight");

        trained(config().build()).savePretrained(dir);
        rewrite(t -> t.put("base_model.model.0.lora_A.weight", manager.zeros(new Shape(3, 8))));
        assertLoadFails(
                TestModels.mlp(manager, 1),
                "key base_model.model.0.lora_A.weight has shape (3, 8) but the model expects (2,"
                    + " 8)");
    }

    @Test
    void aRankThatDisagreesWithTheFileFails() throws IOException {
        trained(config().build()).savePretrained(dir);
        config().optR(4).build().savePretrained(dir);
        assertLoadFails(
                TestModels.mlp(manager, 1), "lora_A.weight has shape (2, 8)", "expects (4, 8)");
    }

    @Test
    void aTruncatedWeightsFileFailsNamingItAndLeavesTheBase() throws IOException {
        trained(config().build()).savePretrained(dir);
        Path file = dir.resolve("adapter_model.safetensors");
        byte[] bytes = Files.readAllBytes(file);
        Files.write(file, Arrays.copyOf(bytes, bytes.length - 100));
        SequentialBlock base = TestModels.mlp(manager, 1);
        SafetensorsFormatException e =
                assertThrows(
                        SafetensorsFormatException.class,
                        () -> LoRAModel.fromPretrained(base, dir));
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
        assertTrue(untouched(base));
    }

    @Test
    void aMissingWeightsFileSaysWhatTheDirectoryHolds() throws IOException {
        config().build().savePretrained(dir);
        Files.writeString(dir.resolve("adapter_model.bin"), "pickle");
        NoSuchFileException e =
                assertThrows(
                        NoSuchFileException.class,
                        () -> LoRAModel.fromPretrained(TestModels.mlp(manager, 1), dir));
        assertTrue(e.getMessage().contains("adapter_model.safetensors"), e.getMessage());
        assertTrue(e.getMessage().contains("adapter_model.bin"), e.getMessage());
        assertTrue(e.getMessage().contains("safetensors"), e.getMessage());
    }

    @Test
    void anUninitialisedBaseIsRefused() throws IOException {
        trained(config().build()).savePretrained(dir);
        SequentialBlock blank =
                new SequentialBlock()
                        .add(Linear.builder().setUnits(64).build())
                        .add(ai.djl.nn.Activation.reluBlock())
                        .add(Linear.builder().setUnits(64).build())
                        .add(ai.djl.nn.Activation.reluBlock())
                        .add(Linear.builder().setUnits(4).build());
        IllegalStateException e =
                assertThrows(
                        IllegalStateException.class, () -> LoRAModel.fromPretrained(blank, dir));
        assertTrue(e.getMessage().contains("not initialised"), e.getMessage());
        assertTrue(untouched(blank));
    }

    @Test
    void savingOverAGoodAdapterKeepsItLoadable() throws IOException {
        LoRAModel first = trained(config().build());
        first.savePretrained(dir);
        LoRAModel second = trained(config().build());
        second.savePretrained(dir);
        try (java.util.stream.Stream<Path> files = Files.list(dir)) {
            assertEquals(
                    List.of("adapter_config.json", "adapter_model.safetensors", "lora_config.json"),
                    files.map(p -> p.getFileName().toString()).sorted().toList());
        }
        assertFalse(
                untouched(
                        LoRAModel.fromPretrained(TestModels.mlp(manager, 1), dir).getBaseModel()));
    }
}
