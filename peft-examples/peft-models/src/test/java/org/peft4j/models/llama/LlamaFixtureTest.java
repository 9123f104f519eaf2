package org.peft4j.models.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertClose;
import static org.peft4j.core.testing.ArrayAssertions.maxAbsDiff;

import ai.djl.Model;
import ai.djl.inference.Predictor;
import ai.djl.modality.nlp.generate.CausalLMOutput;
import ai.djl.modality.nlp.generate.SearchConfig;
import ai.djl.modality.nlp.generate.TextGenerator;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.AdapterScope;
import org.peft4j.core.io.SafetensorsReader;
import org.peft4j.core.io.SafetensorsWriter;
import org.peft4j.core.lm.CausalLMGenerator;
import org.peft4j.core.lm.CausalLMTranslator;
import org.peft4j.core.lm.GenerationConfig;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.lora.LoRALinear;
import org.peft4j.lora.LoRAModel;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The Llama implementation on the real stories260K checkpoints. */
class LlamaFixtureTest {

    private static final String ANCHOR =
            "Once upon a time, there was a little girl named Lily. She loved to play outside in"
                    + " the park.";

    private static NDManager manager;

    @BeforeAll
    static void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    private static LlamaForCausalLM load(Path path) throws Exception {
        return LlamaForCausalLM.fromPretrained(path, manager);
    }

    private static int[] greedy(LlamaForCausalLM model, int[] prompt, int tokens, boolean cache) {
        GenerationConfig config =
                GenerationConfig.builder().optMaxNewTokens(tokens).optUseCache(cache).build();
        return new CausalLMGenerator(model).generate(List.of(prompt), config, manager).get(0);
    }

    private static NDArray logits(LlamaForCausalLM model, NDList input) {
        return model.forward(new ParameterStore(manager, false), input, false).head();
    }

    @Test
    void greedyFromBosTellsTheAnchorStoryInEveryFormat() throws Exception {
        Path dir = Fixtures.stories260K();
        LlamaForCausalLM hf = load(dir);
        LlamaForCausalLM llama2c = load(dir.resolve("stories260K.bin"));
        LlamaForCausalLM bf16 = load(Fixtures.root().resolve("stories260K-bf16-sharded"));
        int[] fromHf = greedy(hf, new int[] {1}, 200, true);
        int[] fromLlama2c = greedy(llama2c, new int[] {1}, 200, true);
        int[] fromBf16 = greedy(bf16, new int[] {1}, 200, true);
        try (LlamaTokenizer tokenizer = LlamaTokenizer.findNextTo(dir)) {
            String story = tokenizer.decode(fromHf);
            assertTrue(story.startsWith(ANCHOR), story);
            assertTrue(tokenizer.decode(fromBf16).startsWith(ANCHOR));
        }
        assertEquals(201, fromHf.length);
        assertArrayEquals(fromHf, fromLlama2c);
        assertNearTieDivergence(hf, fromHf, fromBf16);

        NDArray ids = manager.create(Arrays.stream(fromHf).asLongStream().toArray()).reshape(1, -1);
        float[] a = logits(hf, new NDList(ids)).toFloatArray();
        float[] b = logits(llama2c, new NDList(ids)).toFloatArray();
        assertClose(a, b, 1e-5);
        float[] c = logits(bf16, new NDList(ids)).toFloatArray();
        double bf16Diff = maxAbsDiff(a, c);
        assertTrue(
                bf16Diff > 0 && bf16Diff < 0.5,
                "bf16 weights differ only by rounding: " + bf16Diff);
    }

    /**
     * bf16 weights may change the greedy path only where the float32 model itself hesitates: the
     * paths agree well past the anchor, and at the first difference the float32 logits of the two
     * candidate tokens are within a small margin.
     */
    private static void assertNearTieDivergence(LlamaForCausalLM model, int[] exact, int[] bf16) {
        int d = 0;
        while (d < exact.length && exact[d] == bf16[d]) {
            d++;
        }
        assertTrue(d > 100, "bf16 path agrees for " + d + " tokens");
        if (d == exact.length) {
            return;
        }
        long[] prefix = Arrays.stream(Arrays.copyOf(exact, d)).asLongStream().toArray();
        NDArray last =
                logits(model, new NDList(manager.create(prefix).reshape(1, d))).get(0, d - 1);
        float margin = last.getFloat(exact[d]) - last.getFloat(bf16[d]);
        assertTrue(margin >= 0 && margin < 0.05f, "float32 margin at token " + d + ": " + margin);
    }

    @Test
    void aFloat16CheckpointLoadsAsFloat32(@TempDir Path dir) throws Exception {
        Path source = Fixtures.stories260K();
        Files.copy(source.resolve("config.json"), dir.resolve("config.json"));
        Map<String, NDArray> halves = new LinkedHashMap<>();
        try (SafetensorsReader reader =
                SafetensorsReader.open(source.resolve("model.safetensors"))) {
            for (String name : reader.getTensors().keySet()) {
                halves.put(name, reader.read(name, manager).toType(DataType.FLOAT16, false));
            }
        }
        SafetensorsWriter.write(dir.resolve("model.safetensors"), halves);
        LlamaForCausalLM half = load(dir);
        LlamaForCausalLM full = load(source);
        assertEquals(
                DataType.FLOAT32,
                half.getParameters().valueAt(0).getArray().getDataType(),
                "computed in float32");
        NDArray ids = manager.create(new long[] {1, 403, 407, 261, 378}).reshape(1, 5);
        double diff =
                maxAbsDiff(
                        logits(full, new NDList(ids)).toFloatArray(),
                        logits(half, new NDList(ids)).toFloatArray());
        assertTrue(diff > 0 && diff < 0.05, "float16 rounding only: " + diff);
        int[] story = greedy(half, new int[] {1}, 30, true);
        assertArrayEquals(greedy(full, new int[] {1}, 30, true), story);
    }

    @Test
    void cachedGenerationEqualsFullRecomputation() throws Exception {
        LlamaForCausalLM model = load(Fixtures.stories260K());
        int[] prompt = {1, 403, 407, 261, 378};
        int[] cached = greedy(model, prompt, 60, true);
        int[] recomputed = greedy(model, prompt, 60, false);
        assertArrayEquals(recomputed, cached);

        // the last step's logits through the cache equal those of the full sequence
        long[] all = Arrays.stream(cached).asLongStream().toArray();
        int n = all.length;
        NDArray full = logits(model, new NDList(manager.create(all).reshape(1, n)));
        NDList prefix = new NDList(manager.create(Arrays.copyOf(all, n - 1)).reshape(1, n - 1));
        NDList out = model.forward(new ParameterStore(manager, false), prefix, false);
        NDList step =
                new NDList(
                        manager.create(new long[] {all[n - 1]}).reshape(1, 1),
                        manager.create(new long[] {n - 1}).reshape(1, 1),
                        manager.ones(new Shape(1, n), DataType.INT64));
        step.addAll(out.subNDList(1).subNDList(0, 2 * model.getNumHiddenLayers()));
        NDArray last = logits(model, step);
        assertClose(full.get(":, -1, :").toFloatArray(), last.get(":, -1, :").toFloatArray(), 1e-4);
    }

    @Test
    void aLeftPaddedBatchEqualsThePromptsOneByOne() throws Exception {
        LlamaForCausalLM model = load(Fixtures.stories260K());
        try (LlamaTokenizer tokenizer = LlamaTokenizer.findNextTo(Fixtures.stories260K())) {
            List<int[]> prompts =
                    List.of(
                            tokenizer.encode("Once upon a time", true, false),
                            tokenizer.encode("Tom had a big red ball and", true, false),
                            tokenizer.encode("The sun", true, false));
            GenerationConfig config = GenerationConfig.builder().optMaxNewTokens(30).build();
            List<int[]> batch = new CausalLMGenerator(model).generate(prompts, config, manager);
            for (int i = 0; i < prompts.size(); i++) {
                int[] alone = greedy(model, prompts.get(i), 30, true);
                assertArrayEquals(alone, batch.get(i), "row " + i);
            }
        }
    }

    @Test
    void djlsTextGeneratorRunsOnTheModel() throws Exception {
        LlamaForCausalLM llama = load(Fixtures.stories260K());
        int[] prompt = {1, 403, 407, 261, 378};
        int[] own = greedy(llama, prompt, 20, true);
        try (Model model = Model.newInstance("stories260K");
                NDManager scope = manager.newSubManager()) {
            model.setBlock(llama);
            try (Predictor<NDList, CausalLMOutput> predictor =
                    model.newPredictor(new CausalLMTranslator())) {
                SearchConfig search = new SearchConfig();
                search.setMaxSeqLength(prompt.length + 20);
                search.setPadTokenId(0);
                NDArray input =
                        scope.create(Arrays.stream(prompt).asLongStream().toArray()).reshape(1, -1);
                long[] greedy =
                        new TextGenerator(predictor, "greedy", search)
                                .generate(input)
                                .toLongArray();
                assertArrayEquals(Arrays.stream(own).asLongStream().toArray(), greedy);

                search.setBeam(2);
                NDArray beams = new TextGenerator(predictor, "beam", search).generate(input);
                assertEquals(new Shape(2, prompt.length + 20), beams.getShape());
                long[] firstBeam = beams.get(0).toLongArray();
                assertArrayEquals(
                        Arrays.stream(prompt).asLongStream().toArray(),
                        Arrays.copyOf(firstBeam, prompt.length));

                search.setK(3);
                NDArray contrastive =
                        new TextGenerator(predictor, "contrastive", search).generate(input);
                assertEquals(prompt.length + 20, contrastive.getShape().get(1));
                assertArrayEquals(
                        Arrays.stream(prompt).asLongStream().toArray(),
                        Arrays.copyOf(contrastive.toLongArray(), prompt.length));
            }
        }
    }

    @Test
    void loraWithTheSeedsSevenRegexesAdaptsEveryProjection() throws Exception {
        LlamaForCausalLM llama = load(Fixtures.stories260K());
        NDArray ids = manager.create(new long[] {1, 403, 407, 261, 378}).reshape(1, 5);
        float[] base = logits(llama, new NDList(ids)).toFloatArray();
        LoRAConfig config =
                LoRAConfig.builder()
                        .setTargetModules(
                                ".*q_proj.*",
                                ".*v_proj.*",
                                ".*k_proj.*",
                                ".*gate_proj.*",
                                ".*up_proj.*",
                                ".*o_proj.*",
                                ".*down_proj.*")
                        .optR(8)
                        .optLoraAlpha(16)
                        .build();
        LoRAModel model = new LoRAModel(llama, config);
        assertEquals(35, model.getLoRALayers().size());
        assertTrue(model.getLoRALayers().containsKey("model.layers.4.self_attn.k_proj"));
        // per layer, r * (in + out): q 64+64, k 64+32, v 64+32, o 64+64, gate/up 64+172, down
        // 172+64
        long perLayer = 8 * ((64 + 64) + (64 + 32) + (64 + 32) + (64 + 64) + 3 * (64 + 172));
        assertEquals(5 * perLayer, model.countTrainableParameters());
        assertEquals(46_240, model.countTrainableParameters());
        assertClose(base, logits(llama, new NDList(ids)).toFloatArray(), 1e-6);

        for (LoRALinear layer : model.getLoRALayers().values()) {
            layer.getLoraB()
                    .getArray()
                    .addi(
                            manager.randomNormal(
                                    0, 0.1f, layer.getLoraB().getShape(), DataType.FLOAT32));
        }
        float[] adapted =
                model.forward(new ParameterStore(manager, false), new NDList(ids), false)
                        .head()
                        .toFloatArray();
        assertTrue(maxAbsDiff(base, adapted) > 1e-2, "a nonzero B changes the logits");
        try (AdapterScope off = model.disableAdapter()) {
            float[] disabled =
                    model.forward(new ParameterStore(manager, false), new NDList(ids), false)
                            .head()
                            .toFloatArray();
            assertClose(base, disabled, 1e-6);
        }
    }
}
