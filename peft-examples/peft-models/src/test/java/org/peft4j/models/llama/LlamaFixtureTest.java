package org.peft4j.models.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertRoundingClose;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;
import static org.peft4j.core.testing.ArrayAssertions.floats;
import static org.peft4j.core.testing.ArrayAssertions.maxAbs;
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
import org.peft4j.core.tree.BlockPaths;
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

    private static NDArray logits(ai.djl.nn.Block model, NDList input) {
        return model.forward(new ParameterStore(manager, false), input, false).head();
    }

    private static float[] logits(ai.djl.nn.Block model, int[] tokens) {
        return LlamaRounding.logits(model, tokens, manager);
    }

    private static void assertClearGreedyPath(
            ai.djl.nn.Block model,
            LlamaConfig config,
            int[] tokens,
            int promptLength,
            double extra,
            String what) {
        LlamaRounding.assertClearGreedyPath(
                model, config, tokens, promptLength, extra, manager, what);
    }

    /** Every parameter's values by path, in float32. */
    private static Map<String, float[]> parameters(ai.djl.nn.Block model) {
        Map<String, float[]> values = new LinkedHashMap<>();
        BlockPaths.parameters(model).forEach((path, p) -> values.put(path, floats(p.getArray())));
        return values;
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
        // both files hold the same float32 weights, read as they are
        Map<String, float[]> hfWeights = parameters(hf);
        Map<String, float[]> llama2cWeights = parameters(llama2c);
        assertEquals(hfWeights.keySet(), llama2cWeights.keySet());
        hfWeights.forEach(
                (path, values) ->
                        assertSameBits(
                                values,
                                llama2cWeights.get(path),
                                path + ": both formats store these float32 values"));
        // so the same model: its greedy path is clear of rounding, and both formats follow it
        assertClearGreedyPath(hf, hf.getConfig(), fromHf, 1, 0, "the anchor story");
        assertArrayEquals(fromHf, fromLlama2c);

        float[] a = logits(hf, fromHf);
        float[] b = logits(llama2c, fromHf);
        assertRoundingClose(
                a,
                b,
                LlamaRounding.logits(hf.getConfig(), fromHf.length),
                "the same weights from both formats");
        float[] c = logits(bf16, fromHf);
        double bf16Diff = maxAbsDiff(a, c);
        // bf16 keeps 8 significant bits: each weight moves by up to 2^-9 of itself, and the
        // logits by a few times that of their magnitude (each is a sum of terms of a size
        // comparable to the largest logit, the norms rescaling the stream in between)
        assertTrue(
                bf16Diff > 0 && bf16Diff < 16 * 0x1p-9 * maxAbs(a),
                "bf16 weights differ only by rounding: " + bf16Diff + " of " + maxAbs(a));
        assertNearTieDivergence(hf, fromHf, bf16, fromBf16);
    }

    /**
     * bf16 weights may change the greedy path only where the float32 model itself hesitates: the
     * paths agree well past the anchor, and at the first difference the float32 margin of its
     * token over bf16's is no more than bf16's rounding moved those two logits there (else bf16
     * could not have preferred the other), up to the logits' float32 rounding.
     */
    private static void assertNearTieDivergence(
            LlamaForCausalLM model, int[] exact, LlamaForCausalLM bf16, int[] rounded) {
        int d = 0;
        while (d < exact.length && exact[d] == rounded[d]) {
            d++;
        }
        assertTrue(d > 100, "bf16 path agrees for " + d + " tokens");
        if (d == exact.length) {
            return;
        }
        int[] prefix = Arrays.copyOf(exact, d);
        int vocab = model.getConfig().getVocabSize();
        float[] full = logits(model, prefix);
        float[] half = logits(bf16, prefix);
        int row = (d - 1) * vocab;
        double margin = full[row + exact[d]] - full[row + rounded[d]];
        double moved =
                Math.abs(half[row + exact[d]] - full[row + exact[d]])
                        + Math.abs(half[row + rounded[d]] - full[row + rounded[d]]);
        double rounding = 2 * LlamaRounding.tolerance(model.getConfig(), d, full);
        assertTrue(
                margin >= -rounding && margin <= moved + rounding,
                "float32 margin at token " + d + ": " + margin + ", bf16 moved them by " + moved);
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
        float[] fullLogits = logits(full, new NDList(ids)).toFloatArray();
        double diff = maxAbsDiff(fullLogits, logits(half, new NDList(ids)).toFloatArray());
        // float16 keeps 11 significant bits: weights move by up to 2^-12 of themselves, the
        // logits by a few times that of their magnitude (as for bf16 above)
        assertTrue(
                diff > 0 && diff < 16 * 0x1p-12 * maxAbs(fullLogits),
                "float16 rounding only: " + diff + " of " + maxAbs(fullLogits));
        int[] expected = greedy(full, new int[] {1}, 30, true);
        int[] story = greedy(half, new int[] {1}, 30, true);
        // the same tokens where every margin exceeds what float16 moved the logits on this
        // sequence (measured) plus rounding
        double moved = maxAbsDiff(logits(full, expected), logits(half, expected));
        assertClearGreedyPath(full, full.getConfig(), expected, 1, moved, "float32 vs float16");
        assertArrayEquals(expected, story);
    }

    @Test
    void cachedGenerationEqualsFullRecomputation() throws Exception {
        LlamaForCausalLM model = load(Fixtures.stories260K());
        int[] prompt = {1, 403, 407, 261, 378};
        int[] cached = greedy(model, prompt, 60, true);
        int[] recomputed = greedy(model, prompt, 60, false);
        assertClearGreedyPath(model, model.getConfig(), recomputed, prompt.length, 0, "greedy");
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
        assertRoundingClose(
                full.get(":, -1, :"),
                last.get(":, -1, :"),
                LlamaRounding.logits(model.getConfig(), n),
                "the last step through the cache against the full sequence");
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
                assertClearGreedyPath(
                        model, model.getConfig(), alone, prompts.get(i).length, 0, "row " + i);
                assertArrayEquals(alone, batch.get(i), "row " + i);
            }
        }
    }

    @Test
    void djlsTextGeneratorRunsOnTheModel() throws Exception {
        LlamaForCausalLM llama = load(Fixtures.stories260K());
        int[] prompt = {1, 403, 407, 261, 378};
        int[] own = greedy(llama, prompt, 20, true);
        assertClearGreedyPath(llama, llama.getConfig(), own, prompt.length, 0, "greedy");
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
        // B = 0: the branches add exact zeros, the same math as the base in possibly other orders
        double c = LlamaRounding.logits(llama.getConfig(), 5);
        assertRoundingClose(
                base, logits(llama, new NDList(ids)).toFloatArray(), c, "B = 0 against the base");

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
            assertRoundingClose(base, disabled, c, "disabled adapters against the base");
        }
    }
}
