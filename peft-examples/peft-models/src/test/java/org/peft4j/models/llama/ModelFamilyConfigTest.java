package org.peft4j.models.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertSameParameters;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.core.tree.BlockPaths;
import org.peft4j.models.llama.weights.LlamaCheckpoints;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The real {@code config.json} files of the fixtures build the shapes their checkpoints have (the
 * expected shapes are worked out here from each file's sizes, by hand), with layers and vocabulary
 * cut to stay small; fields a family does not implement are refused by name.
 */
class ModelFamilyConfigTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** The vocabulary the shape tests cut each config to. */
    private static final int VOCAB = 256;

    @TempDir Path dir;

    private NDManager manager;

    @BeforeEach
    void open() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void close() {
        manager.close();
    }

    private static ObjectNode fixtureConfig(String folder) throws IOException {
        Path file = Fixtures.root().resolve(folder).resolve("config.json");
        return (ObjectNode) JSON.readTree(file.toFile());
    }

    private LlamaConfig read(ObjectNode json) throws IOException {
        Path file = dir.resolve("config.json");
        JSON.writeValue(file.toFile(), json);
        return LlamaConfig.fromJson(file);
    }

    /** Builds one layer of the config over a cut vocabulary and returns its parameters. */
    private Map<String, Parameter> oneLayer(ObjectNode json) throws IOException {
        json.put("num_hidden_layers", 1);
        json.put("vocab_size", VOCAB);
        LlamaForCausalLM model = new LlamaForCausalLM(read(json));
        model.initialize(manager, DataType.FLOAT32, new Shape(1, 3));
        NDArray ids = manager.create(new long[] {1, 2, 3}, new Shape(1, 3));
        NDArray logits =
                model.forward(new ParameterStore(manager, false), new NDList(ids), false).head();
        assertEquals(new Shape(1, 3, VOCAB), logits.getShape(), "logits of a 3-token input");
        return BlockPaths.parameters(model);
    }

    private static void assertShape(Map<String, Parameter> p, String name, long... shape) {
        String path = "model.layers.0." + name;
        assertTrue(p.containsKey(path), path + " exists among " + p.keySet());
        assertEquals(new Shape(shape), p.get(path).getArray().getShape(), path);
    }

    private static void assertAbsent(Map<String, Parameter> p, String name) {
        assertFalse(p.containsKey(name), name + " should not exist");
    }

    @Test
    void qwen25HasBiasesOnQkvOnlyAndTiedEmbeddings() throws IOException {
        ObjectNode json = fixtureConfig("configs/qwen2.5-0.5b-instruct");
        LlamaConfig config = read(json.deepCopy());
        assertEquals(ModelFamily.QWEN2, config.getModelFamily());
        assertTrue(config.isQkvBias());
        assertFalse(config.isAttentionBias());
        assertEquals(0, config.getSlidingWindow(), "use_sliding_window is false");
        // hidden 896, 14 heads of 896 / 14 = 64, 2 kv heads: k/v have 128 outputs
        Map<String, Parameter> p = oneLayer(json);
        assertShape(p, "self_attn.q_proj.weight", 896, 896);
        assertShape(p, "self_attn.q_proj.bias", 896);
        assertShape(p, "self_attn.k_proj.weight", 128, 896);
        assertShape(p, "self_attn.k_proj.bias", 128);
        assertShape(p, "self_attn.v_proj.bias", 128);
        assertShape(p, "self_attn.o_proj.weight", 896, 896);
        assertAbsent(p, "model.layers.0.self_attn.o_proj.bias");
        assertShape(p, "mlp.gate_proj.weight", 4864, 896);
        assertAbsent(p, "lm_head.weight");
    }

    @Test
    void llama32HasLlama3RopeScalingAndGroupedQueries() throws IOException {
        ObjectNode json = fixtureConfig("configs/llama3.2-1b-instruct");
        LlamaConfig config = read(json.deepCopy());
        assertEquals(ModelFamily.LLAMA, config.getModelFamily());
        assertEquals("llama3", config.getRopeScaling().type());
        assertEquals(32.0, config.getRopeScaling().factor());
        assertEquals(8192, config.getRopeScaling().originalMaxPositions());
        assertEquals(131072, config.getMaxPositionEmbeddings());
        // hidden 2048, 32 heads of 64, 8 kv heads: k/v have 512 outputs
        Map<String, Parameter> p = oneLayer(json);
        assertShape(p, "self_attn.q_proj.weight", 2048, 2048);
        assertShape(p, "self_attn.k_proj.weight", 512, 2048);
        assertAbsent(p, "model.layers.0.self_attn.q_proj.bias");
        assertShape(p, "mlp.down_proj.weight", 2048, 8192);
        assertAbsent(p, "lm_head.weight");
    }

    @Test
    void qwen3NormsEachHeadAndItsHeadDimIsIndependent() throws IOException {
        ObjectNode json = fixtureConfig("configs/qwen3-1.7b");
        LlamaConfig config = read(json.deepCopy());
        assertEquals(ModelFamily.QWEN3, config.getModelFamily());
        assertTrue(config.isQkNorm());
        assertFalse(config.isQkvBias());
        Map<String, Parameter> p = oneLayer(json.deepCopy());
        assertShape(p, "self_attn.q_proj.weight", 16 * 128, 2048);
        assertShape(p, "self_attn.k_proj.weight", 8 * 128, 2048);
        assertShape(p, "self_attn.q_norm.weight", 128);
        assertShape(p, "self_attn.k_norm.weight", 128);

        // Qwen3-0.6B's sizes: hidden 1024 with 16 heads of 128, so q_proj has 2048 outputs
        json.put("hidden_size", 1024);
        json.put("intermediate_size", 3072);
        p = oneLayer(json);
        assertShape(p, "self_attn.q_proj.weight", 2048, 1024);
        assertShape(p, "self_attn.o_proj.weight", 1024, 2048);
        assertShape(p, "self_attn.q_norm.weight", 128);
    }

    @Test
    void tinyLlamaIsUntiedAndSmolLm2Tied() throws IOException {
        ObjectNode tiny = fixtureConfig("tokenizers/tinyllama-1.1b-chat-v1.0");
        // hidden 2048, 32 heads of 64, 4 kv heads: k has 256 outputs
        Map<String, Parameter> p = oneLayer(tiny);
        assertShape(p, "self_attn.k_proj.weight", 256, 2048);
        assertShape(p, "mlp.up_proj.weight", 5632, 2048);
        assertEquals(new Shape(VOCAB, 2048), p.get("lm_head.weight").getArray().getShape());

        ObjectNode smol = fixtureConfig("tokenizers/smollm2-135m-chatml");
        // hidden 576, 9 heads of 64, 3 kv heads: k has 192 outputs
        p = oneLayer(smol);
        assertShape(p, "self_attn.q_proj.weight", 576, 576);
        assertShape(p, "self_attn.k_proj.weight", 192, 576);
        assertAbsent(p, "lm_head.weight");
    }

    private void assertRefused(ObjectNode json, Consumer<ObjectNode> edit, String... fragments) {
        ObjectNode edited = json.deepCopy();
        edit.accept(edited);
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> read(edited));
        assertTrue(e.getMessage().contains("config.json"), e.getMessage());
        for (String fragment : fragments) {
            assertTrue(e.getMessage().contains(fragment), e.getMessage());
        }
    }

    @Test
    void fieldsThatWouldChangeTheMathAreRefusedByName() throws IOException {
        ObjectNode qwen2 = fixtureConfig("configs/qwen2.5-0.5b-instruct");
        assertRefused(
                qwen2,
                j -> j.put("use_sliding_window", true),
                "\"use_sliding_window\"",
                "not implemented");
        ObjectNode qwen3 = fixtureConfig("configs/qwen3-1.7b");
        assertRefused(
                qwen3,
                j -> j.withArray("layer_types").set(0, JSON.valueToTree("sliding_attention")),
                "\"layer_types\"",
                "sliding_attention");
        ObjectNode smol = fixtureConfig("tokenizers/smollm2-135m-chatml");
        assertRefused(smol, j -> j.put("rope_interleaved", true), "\"rope_interleaved\"");
        assertRefused(
                smol,
                j -> j.put("model_type", "gemma2"),
                "\"model_type\"",
                "gemma2",
                "\"llama\" (LlamaForCausalLM)",
                "\"mistral\" (MistralForCausalLM)",
                "\"qwen2\" (Qwen2ForCausalLM)",
                "\"qwen3\" (Qwen3ForCausalLM)");
        assertRefused(smol, j -> j.remove("model_type"), "\"model_type\"", "missing");
        assertRefused(
                smol,
                j -> j.put("model_type", "qwen2"),
                "\"architectures\"",
                "LlamaForCausalLM",
                "Qwen2ForCausalLM");
        assertRefused(
                smol,
                j -> j.putArray("architectures").add("LlamaForSequenceClassification"),
                "\"architectures\"",
                "causal language models");
    }

    @Test
    void switchesBelongToTheirFamilies() throws IOException {
        Path reference = ModelFamiliesReferenceTest.reference("mistral");
        ObjectNode mistral = (ObjectNode) JSON.readTree(reference.resolve("config.json").toFile());
        assertRefused(mistral, j -> j.put("sliding_window", 0), "\"sliding_window\"", "> 0");
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                LlamaConfig.builder()
                                        .setSizes(16, 32, 1, 2, 2, 10)
                                        .optSlidingWindow(4)
                                        .build());
        assertTrue(e.getMessage().contains("MISTRAL"), e.getMessage());
        e =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                LlamaConfig.builder()
                                        .setSizes(16, 32, 1, 2, 2, 10)
                                        .optModelFamily(ModelFamily.QWEN2)
                                        .optAttentionBias(true)
                                        .build());
        assertTrue(e.getMessage().contains("attention_bias"), e.getMessage());
        mistral.putNull("sliding_window");
        assertEquals(0, read(mistral).getSlidingWindow(), "null: no window (Mistral v0.2 on)");
    }

    @Test
    void eachFamilySavesAsItsOwnConfigAndLoadsBack() throws IOException {
        for (ModelFamily family : ModelFamily.values()) {
            LlamaConfig.Builder b =
                    LlamaConfig.builder()
                            .setSizes(16, 32, 1, 4, 2, 40)
                            .optHeadDim(6)
                            .optModelFamily(family);
            if (family == ModelFamily.MISTRAL) {
                b.optSlidingWindow(3);
            }
            if (family == ModelFamily.LLAMA || family == ModelFamily.QWEN3) {
                b.optAttentionBias(true);
            }
            LlamaForCausalLM model = LlamaForCausalLM.random(b.build(), manager, 3);
            Path saved = dir.resolve(family.getModelType());
            LlamaCheckpoints.save(model, saved);
            ObjectNode written = (ObjectNode) JSON.readTree(saved.resolve("config.json").toFile());
            assertEquals(family.getModelType(), written.get("model_type").textValue());
            assertEquals(
                    family.getArchitecture(), written.get("architectures").get(0).textValue());
            if (family == ModelFamily.QWEN2) {
                // Qwen2Config has no attention_bias: its q/k/v biases are the architecture's
                assertNull(written.get("attention_bias"));
            }
            LlamaForCausalLM loaded = LlamaForCausalLM.fromPretrained(saved, manager);
            assertEquals(model.getConfig().toJson(), loaded.getConfig().toJson(), family + "");
            assertSameParameters(
                    BlockPaths.parameters(model),
                    BlockPaths.parameters(loaded),
                    family + ": float32 written and read back unchanged");
        }
        assertTrue(Files.isDirectory(dir.resolve("qwen3")));
    }
}
