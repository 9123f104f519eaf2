package org.peft4j.models.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.io.SafetensorsReader;
import org.peft4j.core.testing.ConfigFields;
import org.peft4j.core.testing.HfTargetRules;
import org.peft4j.core.tree.BlockPaths;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.lora.LoRAModel;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * LoRA adapters of a Llama, judged by Hugging Face PEFT 0.20's target rules ({@link
 * HfTargetRules}) over the module names Hugging Face's {@code LlamaForCausalLM} has (written out
 * here from transformers' {@code modeling_llama.py}), not by peft4j's matcher.
 */
class LlamaAdapterFilesTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int LAYERS = 2;

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

    private LlamaForCausalLM llama() {
        return LlamaForCausalLM.random(
                LlamaConfig.builder().setSizes(16, 32, LAYERS, 4, 2, 50).build(), manager, 7);
    }

    /** Every key of {@code named_modules()} of transformers' LlamaForCausalLM. */
    private static List<String> huggingFaceModuleNames() {
        List<String> names =
                new ArrayList<>(
                        List.of("", "model", "model.embed_tokens", "model.layers", "model.norm"));
        for (int i = 0; i < LAYERS; i++) {
            String layer = "model.layers." + i;
            names.add(layer);
            names.add(layer + ".self_attn");
            for (String p : List.of("q_proj", "k_proj", "v_proj", "o_proj")) {
                names.add(layer + ".self_attn." + p);
            }
            names.add(layer + ".mlp");
            for (String p : List.of("gate_proj", "up_proj", "down_proj")) {
                names.add(layer + ".mlp." + p);
            }
            names.add(layer + ".input_layernorm");
            names.add(layer + ".post_attention_layernorm");
        }
        names.add("model.rotary_emb");
        names.add("lm_head");
        return names;
    }

    private JsonNode saveAndJudge(LoRAConfig config, String name) throws IOException {
        Path out = dir.resolve(name);
        LoRAModel model = new LoRAModel(llama(), config);
        model.savePretrained(out);
        Set<String> adapted = new TreeSet<>();
        try (SafetensorsReader reader =
                SafetensorsReader.open(out.resolve("adapter_model.safetensors"))) {
            for (String key : reader.getTensors().keySet()) {
                assertTrue(key.startsWith("base_model.model."), key);
                if (key.endsWith(".lora_A.weight")) {
                    adapted.add(key.substring(17, key.length() - ".lora_A.weight".length()));
                }
            }
        }
        assertEquals(new TreeSet<>(model.getLoRALayers().keySet()), adapted);
        List<String> moduleNames = huggingFaceModuleNames();
        assertTrue(moduleNames.containsAll(adapted), "peft4j's paths are Hugging Face's names");
        moduleNames.addAll(BlockPaths.blocks(llama()).keySet());
        JsonNode hf = JSON.readTree(out.resolve("adapter_config.json").toFile());
        assertEquals(
                adapted,
                HfTargetRules.hfSelected(hf, moduleNames),
                name + ": Hugging Face PEFT's rules select exactly the adapted layers; written: "
                        + hf.get("target_modules"));
        JsonNode paddle = JSON.readTree(out.resolve("lora_config.json").toFile());
        assertEquals(
                adapted,
                HfTargetRules.paddleSelected(paddle, moduleNames),
                name + ": PaddleNLP's rule; written: " + paddle.get("target_modules"));
        Set<String> extra = HfTargetRules.fields(hf);
        extra.removeAll(ConfigFields.HF_LORA_CONFIG);
        assertEquals(Set.of(), extra, name + ": adapter_config.json fields outside LoraConfig");
        Set<String> extraPaddle = HfTargetRules.fields(paddle);
        extraPaddle.removeAll(ConfigFields.PADDLE_LORA_CONFIG);
        assertEquals(Set.of(), extraPaddle, name + ": lora_config.json fields outside LoRAConfig");
        assertEquals(
                model.getLoRALayers().keySet(),
                LoRAModel.fromPretrained(llama(), out).getLoRALayers().keySet(),
                name + ": reloaded");
        return hf;
    }

    @Test
    void theSeedsRegexListIsWrittenAsTheProjectionsNames() throws IOException {
        JsonNode seed =
                saveAndJudge(
                        LoRAConfig.builder()
                                .setTargetModules(
                                        ".*q_proj.*",
                                        ".*v_proj.*",
                                        ".*k_proj.*",
                                        ".*gate_proj.*",
                                        ".*up_proj.*",
                                        ".*o_proj.*",
                                        ".*down_proj.*")
                                .build(),
                        "seed-regex-list");
        assertEquals(
                "[\"q_proj\",\"k_proj\",\"v_proj\",\"o_proj\",\"gate_proj\",\"up_proj\","
                        + "\"down_proj\"]",
                seed.get("target_modules").toString());
    }

    @Test
    void namesAndSingleRegexesSelectExactlyTheAdaptedLayers() throws IOException {
        JsonNode names =
                saveAndJudge(
                        LoRAConfig.builder().setTargetModules("q_proj", "v_proj").build(),
                        "names");
        assertEquals("[\"q_proj\",\"v_proj\"]", names.get("target_modules").toString());
        saveAndJudge(
                LoRAConfig.builder().setTargetModules(".*\\.(q_proj|v_proj)").build(),
                "single-regex");
        JsonNode firstLayer =
                saveAndJudge(
                        LoRAConfig.builder()
                                .setTargetModules("model\\.layers\\.0\\.self_attn\\.[qv]_proj")
                                .build(),
                        "first-layer-only");
        assertEquals(
                "[\"layers.0.self_attn.q_proj\",\"layers.0.self_attn.v_proj\"]",
                firstLayer.get("target_modules").toString());
    }
}
