package org.peft4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertAllClose;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;

import ai.djl.ndarray.NDManager;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.io.SafetensorsReader;
import org.peft4j.lora.LoRALinear;
import org.peft4j.lora.LoRAModel;
import org.peft4j.models.llama.LlamaConfig;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.llama.LlamaRounding;
import org.peft4j.models.llama.weights.LlamaCheckpoints;
import org.peft4j.prefix.PrefixModelForCausalLM;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * PaddleNLP's adapters load and convert as the Hugging Face adapter they are. The adapters are
 * peft-lora's test files ({@code src/test/python/write_paddle_adapters.py}: one adapter as
 * PaddleNLP saves it whole, in two rank files, in bfloat16, in the unified checkpoint's
 * safetensors and under pickle protocol 2, and as Hugging Face PEFT saves it; prefixes likewise)
 * for the tiny Llama below. Same weights through the same layers give the same logits bit for bit.
 */
class PaddleAdapterCommandTest {

    /** peft-lora's test files; surefire runs in this module's directory. */
    private static final Path ADAPTERS =
            Path.of("..", "..", "peft-lora", "src", "test", "resources", "paddle");

    private static final String[] FORMS = {
        "lora", "lora_tp2", "lora_bf16", "lora_safetensors", "lora_protocol2"
    };

    private static final int[] TOKENS = {1, 7, 22, 3, 41, 63, 5};

    @TempDir static Path shared;

    private static Path model;

    @BeforeAll
    static void setUp() throws IOException {
        model = shared.resolve("model");
        LlamaConfig tiny = LlamaConfig.builder().setSizes(32, 64, 2, 4, 2, 64).build();
        try (NDManager manager = NDManager.newBaseManager()) {
            LlamaCheckpoints.save(LlamaForCausalLM.random(tiny, manager, 16), model);
        }
    }

    @Test
    void everyPaddleFormGivesTheHuggingFaceAdaptersWeightsAndLogits() throws IOException {
        try (NDManager manager = NDManager.newBaseManager()) {
            float[] base =
                    LlamaRounding.logits(
                            LlamaForCausalLM.fromPretrained(model, manager), TOKENS, manager);
            LoRAModel hf =
                    LoRAModel.fromPretrained(
                            LlamaForCausalLM.fromPretrained(model, manager),
                            ADAPTERS.resolve("hf"));
            float[] expected = LlamaRounding.logits(hf, TOKENS, manager);
            assertFalse(java.util.Arrays.equals(base, expected), "the adapter changes the logits");
            for (String form : FORMS) {
                LoRAModel paddle =
                        LoRAModel.fromPretrained(
                                LlamaForCausalLM.fromPretrained(model, manager),
                                ADAPTERS.resolve(form));
                assertEquals(hf.getLoRALayers().keySet(), paddle.getLoRALayers().keySet(), form);
                for (Map.Entry<String, LoRALinear> e : hf.getLoRALayers().entrySet()) {
                    LoRALinear p = paddle.getLoRALayers().get(e.getKey());
                    String why = form + " " + e.getKey() + ": the same values, transposed";
                    LoRALinear h = e.getValue();
                    assertSameBits(h.getLoraA().getArray(), p.getLoraA().getArray(), why);
                    assertSameBits(h.getLoraB().getArray(), p.getLoraB().getArray(), why);
                }
                assertSameBits(
                        expected,
                        LlamaRounding.logits(paddle, TOKENS, manager),
                        form + ": the same weights through the same layers");
            }
        }
    }

    @Test
    void paddlePrefixesGiveTheHuggingFacePrefix() throws IOException {
        try (NDManager manager = NDManager.newBaseManager()) {
            // no projection: the table reordered (keys then values -> per layer), exact
            float[] expected = prefixLogits("prefix_hf", manager);
            assertSameBits(expected, prefixLogits("prefix", manager), "prefix: a permutation");
            assertSameBits(expected, prefixLogits("prefix_tp2", manager), "rows joined");
            // projection: tanh(E W1 + b1) W3 + b3 in float32 against numpy's float64; 8 and 16
            // terms of O(1) products, so each value within 1e-5 (u = 6e-8)
            PrefixModelForCausalLM projected =
                    PrefixModelForCausalLM.fromPretrained(
                            LlamaForCausalLM.fromPretrained(model, manager),
                            ADAPTERS.resolve("prefix_projection"));
            PrefixModelForCausalLM reference =
                    PrefixModelForCausalLM.fromPretrained(
                            LlamaForCausalLM.fromPretrained(model, manager),
                            ADAPTERS.resolve("prefix_projection_hf"));
            assertAllClose(
                    reference.getPrefixEncoder().getEmbedding().getArray(),
                    projected.getPrefixEncoder().getEmbedding().getArray(),
                    1e-5,
                    1e-5,
                    "the projection's output as the prefix");
        }
    }

    private static float[] prefixLogits(String form, NDManager manager) throws IOException {
        PrefixModelForCausalLM prefix =
                PrefixModelForCausalLM.fromPretrained(
                        LlamaForCausalLM.fromPretrained(model, manager), ADAPTERS.resolve(form));
        return LlamaRounding.logits(prefix, TOKENS, manager);
    }

    private static String[] convert(Path adapter, Path out) {
        return CliRunner.run(
                "convert",
                "--model",
                model.toString(),
                "--adapter",
                adapter.toString(),
                "--output",
                out.toString());
    }

    @Test
    void convertWritesTheHuggingFaceAdapter() throws IOException {
        Path out = shared.resolve("converted");
        String[] result = convert(ADAPTERS.resolve("lora_tp2"), out);
        assertEquals("0", result[0], result[2]);
        assertTrue(Files.isRegularFile(out.resolve("adapter_config.json")));
        try (NDManager manager = NDManager.newBaseManager();
                SafetensorsReader expected =
                        SafetensorsReader.open(
                                ADAPTERS.resolve("hf").resolve("adapter_model.safetensors"));
                SafetensorsReader actual =
                        SafetensorsReader.open(out.resolve("adapter_model.safetensors"))) {
            assertEquals(expected.getTensors().keySet(), actual.getTensors().keySet());
            for (String key : expected.getTensors().keySet()) {
                assertSameBits(
                        expected.read(key, manager),
                        actual.read(key, manager),
                        key + ": rank files joined and transposed as PaddleNLP's merge does");
            }
        }
        // a second conversion into the now non-empty directory is refused
        String[] again = convert(ADAPTERS.resolve("lora"), out);
        assertTrue(CliRunner.error(again).contains("--output"), again[2]);
    }

    @Test
    void convertWritesAPaddlePrefixAsTheHuggingFacePrefix() throws IOException {
        Path out = shared.resolve("converted-prefix");
        String[] result = convert(ADAPTERS.resolve("prefix_tp2"), out);
        assertEquals("0", result[0], result[2]);
        try (NDManager manager = NDManager.newBaseManager()) {
            PrefixModelForCausalLM converted =
                    PrefixModelForCausalLM.fromPretrained(
                            LlamaForCausalLM.fromPretrained(model, manager), out);
            assertSameBits(
                    prefixLogits("prefix_hf", manager),
                    LlamaRounding.logits(converted, TOKENS, manager),
                    "rank files joined, reordered and written as prompt_embeddings");
        }
    }

    @Test
    void aPickleNamingAForbiddenGlobalEndsInOneLineNamingItAndTheFile() throws IOException {
        Path evil = Files.createDirectories(shared.resolve("evil"));
        Files.copy(
                ADAPTERS.resolve("lora").resolve("lora_config.json"),
                evil.resolve("lora_config.json"));
        // PROTO 4; GLOBAL 'os system'; MARK; BINUNICODE 'touch PWNED'; TUPLE; REDUCE; STOP
        byte[] head = {(byte) 0x80, 4, 'c'};
        byte[] call =
                "os\nsystem\n(X\u000b\u0000\u0000\u0000touch PWNEDtR."
                        .getBytes(StandardCharsets.ISO_8859_1);
        byte[] bytes = new byte[head.length + call.length];
        System.arraycopy(head, 0, bytes, 0, head.length);
        System.arraycopy(call, 0, bytes, head.length, call.length);
        Path file = Files.write(evil.resolve("lora_model_state.pdparams"), bytes);
        String[] result = convert(evil, shared.resolve("evil-out"));
        String error = CliRunner.error(result);
        assertTrue(error.contains(file.toString()), error);
        assertTrue(error.contains("os.system"), error);
        assertFalse(Files.exists(Path.of("PWNED")));
        assertFalse(Files.exists(shared.resolve("evil-out").resolve("adapter_model.safetensors")));
    }
}
