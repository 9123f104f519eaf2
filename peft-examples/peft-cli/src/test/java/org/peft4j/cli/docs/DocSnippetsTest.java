package org.peft4j.cli.docs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertRoundingClose;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;

import ai.djl.Device;
import ai.djl.Model;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;

import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.AdapterScope;
import org.peft4j.core.Devices;
import org.peft4j.core.io.SafetensorsReader;
import org.peft4j.core.lm.CausalLMGenerator;
import org.peft4j.core.lm.GenerationConfig;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.core.testing.SamplingMargins;
import org.peft4j.train.data.Dataset;
import org.peft4j.train.data.ExampleEncoder;
import org.peft4j.train.data.JsonlExamples;
import org.peft4j.train.data.TokenizedExample;
import org.peft4j.models.chat.ChatInput;
import org.peft4j.models.chat.ChatMessage;
import org.peft4j.models.chat.ChatTemplate;
import org.peft4j.models.llama.LlamaConfig;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.llama.LlamaRounding;
import org.peft4j.models.llama.weights.LlamaCheckpoints;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.cli.quickstart.LoRAQuickstart;
import org.peft4j.train.FineTuneConfig;
import org.peft4j.train.FineTuner;
import org.peft4j.train.Schedule;
import org.peft4j.train.TrainableModel;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.lora.LoRAModel;
import org.peft4j.lora.WeightedAdapters;
import org.peft4j.parallel.TensorParallel;
import org.peft4j.parallel.comm.Communicator;
import org.peft4j.parallel.comm.Communicators;
import org.peft4j.prefix.PrefixConfig;
import org.peft4j.prefix.PrefixModelForCausalLM;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The Java code of the README and of {@code docs/}, run. Each region between {@code // snippet:start
 * NAME} and {@code // snippet:end NAME} is what a Markdown block marked {@code <!-- snippet: NAME
 * -->} shows, to the character ({@link DocsCodeTest} checks); the test around it supplies the
 * variables the docs name in prose and checks what the code did.
 *
 * <p>The regions are laid out as the docs show them, not as the formatter would: do not run
 * google-java-format on this file.
 */
class DocSnippetsTest {

    private static final int WIDTH = 16;
    private static final int HIDDEN = 128;

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

    @Test
    void readmeQuickstart() throws IOException {
        // the quickstart's network (peft4j quickstart), two instances with the same weights
        Block baseModel = LoRAQuickstart.network(manager);
        Block otherBaseModel = LoRAQuickstart.network(manager);
        LoRAQuickstart.copy(baseModel, otherBaseModel);
        Path adapterDir = dir.resolve("lora_path");
        NDArray x = manager.randomNormal(new Shape(8, WIDTH));
        // snippet:start readme-quickstart
        // 1. Describe the adapter: which Linear layers, the rank r and alpha (scaling = alpha / r).
        //    For a Llama, the seed's regexes: .setTargetModules(".*q_proj.*", ".*v_proj.*", ...)
        LoRAConfig config = LoRAConfig.builder()
                .setTargetModules("0", "2", "4")
                .optR(4)
                .optLoraAlpha(8)
                .optMergeWeights(true)
                .build();

        // 2. Wrap the model: matching Linear layers become LoRALinear layers sharing the base weights.
        LoRAModel model = new LoRAModel(baseModel, config);

        // 3. Train only LoRA: A and B require gradients, everything else is frozen.
        model.markOnlyLoRAAsTrainable();
        model.printTrainableParameters();
        // trainable params: 2,176 || all params: 22,928 || trainable%: 9.4906
        Model holder = Model.newInstance("lora");
        holder.setBlock(model);            // a LoRAModel is a DJL Block: Trainer and Predictor just work
        // ... train with holder.newTrainer(...) ...

        // 4. Save in the Hugging Face PEFT format: adapter_config.json + adapter_model.safetensors.
        model.savePretrained(adapterDir);

        // 5. Load onto another instance of the base model; eval() merges (merge_weights = true).
        LoRAModel loaded = LoRAModel.fromPretrained(otherBaseModel, adapterDir);
        loaded.eval();
        // snippet:end readme-quickstart
        holder.close();
        // r (in + out) for each of the three layers, as the comment in the block says
        long trainable = 4L * (WIDTH + HIDDEN) + 4L * (HIDDEN + HIDDEN) + 4L * (HIDDEN + WIDTH);
        assertEquals(2176, trainable);
        assertEquals(trainable, model.countTrainableParameters());
        long base = (WIDTH + 1L) * HIDDEN + (HIDDEN + 1L) * HIDDEN + (HIDDEN + 1L) * WIDTH;
        assertEquals(22_928, base + trainable);
        assertTrue(Files.isRegularFile(adapterDir.resolve("adapter_config.json")));
        assertSavedEqualsLive(adapterDir, model);
        // The loaded model is merged (B is still 0, so W + s B A is W) where the live one runs
        // the branch: the same math in other orders. About 280 roundings along the deepest path
        // (products over 16, 128 and 128, the biases, two tanh); errors of either sign add up like
        // a random walk, 4 sqrt(n) u of the terms per evaluation, 8 sqrt(280) = 134 for two; the
        // terms (128 tanh values times the weights) are up to a few times the largest output:
        // 1024 u of it.
        assertRoundingClose(
                forward(model, x), forward(loaded, x), 1024, "the loaded, merged model's output");
    }

    @Test
    void readmeLlama() throws IOException {
        Path modelDir = Fixtures.stories260K();
        LoRAConfig config = LoRAConfig.builder().setTargetModules(".*q_proj.*", ".*v_proj.*").build();
        // snippet:start readme-llama
        LlamaForCausalLM llama = LlamaForCausalLM.fromPretrained(modelDir, manager);
        LoRAModel model = new LoRAModel(llama, config);
        // snippet:end readme-llama
        long adapted =
                model.getTrainableParameters().keySet().stream()
                        .filter(name -> name.endsWith("lora_A"))
                        .count();
        assertEquals(2L * llama.getConfig().getNumHiddenLayers(), adapted);
    }

    @Test
    void chatTemplate() throws IOException {
        Path modelDir = Fixtures.root().resolve("configs/qwen2.5-0.5b-instruct");
        // snippet:start chat-template
        ChatTemplate template = ChatTemplate.fromPretrained(modelDir); // tokenizer files only
        String prompt = template.render(List.of(
                ChatMessage.system("You are a concise assistant."),
                ChatMessage.user("What is LoRA?")), true);          // add_generation_prompt
        // snippet:end chat-template
        assertEquals(
                "<|im_start|>system\nYou are a concise assistant.<|im_end|>\n"
                        + "<|im_start|>user\nWhat is LoRA?<|im_end|>\n<|im_start|>assistant\n",
                prompt);
        List<Map<String, Object>> tools = List.of(Map.of("type", "function"));
        // snippet:start chat-template-input
        ChatInput input = ChatInput.builder()
                .setMessages(List.of(ChatMessage.user("What is the weather in Paris?")))
                .optAddGenerationPrompt(true)
                .optVariable("tools", tools)                       // any template variable
                .optClock(Clock.fixed(Instant.parse("2024-09-05T08:30:00Z"), ZoneOffset.UTC))
                .build();
        String withTools = template.render(input);
        // snippet:end chat-template-input
        assertTrue(withTools.contains("<tools>\n{\"type\": \"function\"}\n</tools>"), withTools);
    }

    @Test
    void llamaLoadingAndGeneration() throws IOException {
        Path modelDir = Fixtures.stories260K();
        // snippet:start llama-loading
        LlamaForCausalLM llama = LlamaForCausalLM.fromPretrained(modelDir, manager); // HF dir or .bin
        LlamaTokenizer tokenizer = LlamaTokenizer.findNextTo(modelDir); // tokenizer.json or .bin
        int[] ids = tokenizer.encodeStart("Once upon a time"); // BOS where the files add it, no EOS
        // snippet:end llama-loading
        assertEquals(llama.getConfig().getBosTokenId(), ids[0]);
        List<int[]> prompts = List.of(ids);
        // snippet:start llama-generation
        GenerationConfig config = tokenizer.getSpecialTokens() // stop at every EOS id; PAD
                .configure(GenerationConfig.builder())
                .optMaxNewTokens(200).optTemperature(0.8f).optTopP(0.9f).optSeed(7).build();
        List<int[]> out = new CausalLMGenerator(llama).generate(prompts, config, manager);
        // snippet:end llama-generation
        List<int[]> again = new CausalLMGenerator(llama).generate(prompts, config, manager);
        tokenizer.close();
        assertEquals(1, out.size());
        int[] tokens = out.get(0);
        assertTrue(tokens.length > ids.length && tokens.length <= ids.length + 200, tokens.length + " tokens");
        assertArrayEquals(ids, java.util.Arrays.copyOf(tokens, ids.length), "the prompt comes first");
        // the same seed draws the same numbers; the two runs' logits agree to rounding, not
        // bitwise, so they sample the same tokens up to the first draw that rounding could tip
        // (and, as a rule, beyond: that is only where they may part)
        float[] logits = LlamaRounding.logits(llama, out.get(0), manager);
        SamplingMargins.assertSameOrNearBoundary(
                out.get(0),
                again.get(0),
                logits,
                llama.getVocabSize(),
                ids.length,
                config,
                LlamaRounding.tolerance(llama.getConfig(), out.get(0).length, logits),
                "the same seed gives the same tokens");
        // and the seed is what decides: another one samples another story
        GenerationConfig otherSeed =
                GenerationConfig.builder()
                        .optMaxNewTokens(200)
                        .optTemperature(0.8f)
                        .optTopP(0.9f)
                        .optSeed(8)
                        .optEosTokenIds(llama.getConfig().getEosTokenIds())
                        .build();
        List<int[]> other = new CausalLMGenerator(llama).generate(prompts, otherSeed, manager);
        assertTrue(!java.util.Arrays.equals(out.get(0), other.get(0)), "seed 8 samples otherwise");
    }

    @Test
    void finetuningFromJava() throws IOException {
        Path modelDir = Fixtures.stories260K();
        Path trainFile = dir.resolve("train.jsonl");
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            lines.add("{\"src\": \"Once upon a time\", \"tgt\": \"there was a girl named Mia.\"}");
        }
        Files.write(trainFile, lines, StandardCharsets.UTF_8);
        LoRAConfig loraConfig = LoRAConfig.builder().setTargetModules(".*q_proj.*", ".*v_proj.*").build();
        Path outputDir = dir.resolve("out");
        // snippet:start finetuning-java
        try (NDManager manager = NDManager.newBaseManager();
                LlamaTokenizer tokenizer = LlamaTokenizer.findNextTo(modelDir)) {
            LlamaForCausalLM llama = LlamaForCausalLM.fromPretrained(modelDir, manager);
            LoRAModel lora = new LoRAModel(llama, loraConfig);
            // at most 2048 tokens, or the model's context if shorter; longer examples are cut and counted
            ExampleEncoder encoder = ExampleEncoder.builder(tokenizer).fromModel(lora).build();
            List<TokenizedExample> train =
                    encoder.encodeAll(JsonlExamples.read(trainFile, false), trainFile.toString()).examples();
            FineTuneConfig config = FineTuneConfig.builder()
                    .optLearningRate(3e-4).optEpochs(3).optBatchSize(8).optWarmupSteps(100)
                    .optSchedule(Schedule.Kind.COSINE).build();
            new FineTuner(TrainableModel.of(lora), config, new Dataset(train, 42), List.of(),
                    outputDir, manager, System.err).run(null);
        }
        // snippet:end finetuning-java
        Map<?, ?> results =
                new ObjectMapper().readValue(outputDir.resolve("train_results.json").toFile(), Map.class);
        assertEquals(3, results.get("steps"), "3 epochs of one batch of 8");
        assertTrue(Files.isRegularFile(outputDir.resolve("adapter_model.safetensors")));
    }

    @Test
    void parallelLoading() throws IOException {
        Path modelDir = Fixtures.stories260K();
        Path adapterDir = dir.resolve("my-adapter");
        Path outputDir = dir.resolve("out");
        Path shardedDir = dir.resolve("out-tp");
        try (NDManager setup = NDManager.newBaseManager()) {
            LoRAModel adapter =
                    new LoRAModel(
                            LlamaForCausalLM.fromPretrained(modelDir, setup),
                            LoRAConfig.builder().setTargetModules(".*_proj").build());
            adapter.savePretrained(adapterDir);
        }
        // snippet:start parallel-loading
        Communicator world = Communicators.fromEnvironment();   // Open MPI under mpirun, else one process
        TensorParallel group = TensorParallel.of(world);
        try (NDManager manager = NDManager.newBaseManager()) {
            // every rank reads the full checkpoint and keeps its part, one tensor at a time
            LlamaForCausalLM llama = LlamaForCausalLM.fromPretrained(modelDir, manager, group, false);
            LoRAModel model = LoRAModel.fromPretrained(llama, adapterDir); // any adapter
            // ... forward passes and generation as on one process; every rank sees the same logits
            model.savePretrained(outputDir);          // merged: rank 0 writes the usual files
            model.savePretrained(shardedDir, false);  // one file per rank
        }
        // snippet:end parallel-loading
        assertEquals(1, world.getWorldSize(), "the build runs this test on one process");
        assertSameTensors(
                adapterDir.resolve("adapter_model.safetensors"),
                outputDir.resolve("adapter_model.safetensors"));
    }

    @Test
    void prefixFiveSteps() throws IOException {
        // hidden 32, 2 layers, 4 heads of 8, 2 key/value heads
        LlamaConfig tiny = LlamaConfig.builder().setSizes(32, 64, 2, 4, 2, 64).build();
        LlamaForCausalLM llama = LlamaForCausalLM.random(tiny, manager, 3);
        LlamaForCausalLM otherLlama = LlamaForCausalLM.random(tiny, manager, 3);
        Path prefixDir = dir.resolve("prefix_path");
        // snippet:start prefix-five-steps
        PrefixConfig config = PrefixConfig.builder()
                .fromModel(llama)                // layers, heads, kv heads, head size, hidden size
                .setNumPrefixTokens(16)
                .build();                        // .optPrefixProjection(256) for the projection
        PrefixModelForCausalLM model = new PrefixModelForCausalLM(llama, config);
        model.markOnlyPrefixAsTrainable();
        model.printTrainableParameters();       // 16 * 2 * L * kvHeads * headDim trainable
        // train: Model.setBlock(model), a Trainer, TokenCrossEntropy.loss(logits, labels)
        model.savePretrained(prefixDir);
        PrefixModelForCausalLM loaded = PrefixModelForCausalLM.fromPretrained(otherLlama, prefixDir);
        // snippet:end prefix-five-steps
        assertEquals(16L * 2 * 2 * 2 * (32 / 4), model.countTrainableParameters());
        assertSavedEqualsLive(prefixDir, loaded);
    }

    @Test
    void prefixNamed() throws IOException {
        LlamaConfig tiny = LlamaConfig.builder().setSizes(32, 64, 2, 4, 2, 64).build();
        LlamaForCausalLM llama = LlamaForCausalLM.random(tiny, manager, 3);
        LlamaForCausalLM otherLlama = LlamaForCausalLM.random(tiny, manager, 3);
        Path prefixDir = dir.resolve("prefixes");
        PrefixConfig config = PrefixConfig.builder().fromModel(llama).setNumPrefixTokens(4).build();
        PrefixConfig codeConfig =
                PrefixConfig.builder().fromModel(llama).setNumPrefixTokens(8).build();
        // snippet:start prefix-named
        PrefixModelForCausalLM model = new PrefixModelForCausalLM(llama, config); // "default"
        model.addAdapter("code", codeConfig); // random, frozen, not active
        model.setAdapter("code"); // the forward pass uses it; only it trains
        // ... train ...
        model.savePretrained(prefixDir); // prefixDir: default's files, prefixDir/code/: code's
        PrefixModelForCausalLM loaded =
                PrefixModelForCausalLM.fromPretrained(otherLlama, prefixDir);
        loaded.getAdapterNames(); // [default, code]; "default" active
        loaded.setAdapter("code");
        loaded.deleteAdapter("default"); // fine: "code" is active (the active one is refused)
        // snippet:end prefix-named
        assertEquals(List.of("code"), loaded.getAdapterNames());
        assertEquals(8, loaded.getPeftConfig().getNumPrefixTokens());
        assertSavedEqualsLive(prefixDir.resolve("code"), loaded);
    }

    @Test
    void combiningAdapters() throws IOException {
        Path modelDir = Fixtures.stories260K();
        Path mathDir = dir.resolve("math");
        Path codeDir = dir.resolve("code");
        Path combinedDir = dir.resolve("combined");
        for (Path adapterDir : List.of(mathDir, codeDir)) {
            LoRAConfig config = LoRAConfig.builder().setTargetModules("q_proj", "v_proj").build();
            new LoRAModel(LlamaForCausalLM.fromPretrained(modelDir, manager), config)
                    .savePretrained(adapterDir);
        }
        // snippet:start combining-adapters
        LlamaForCausalLM base = LlamaForCausalLM.fromPretrained(modelDir, manager);
        WeightedAdapters combined = WeightedAdapters.builder()
                .setAdapters(List.of(
                        WeightedAdapters.Adapter.read(base, mathDir),   // base is left unadapted
                        WeightedAdapters.Adapter.read(base, codeDir)))
                .setWeights(0.7, 0.3)
                .setCombination(WeightedAdapters.Combination.CAT)    // or LINEAR, SVD + optRank
                .build();
        combined.save(base, combinedDir);                            // an ordinary adapter
        LoRAModel model = LoRAModel.fromPretrained(base, combinedDir);
        // snippet:end combining-adapters
        assertEquals(16, model.getPeftConfig().getR());
        assertEquals(1.0, model.getPeftConfig().getScaling());
    }

    private static LoRAConfig qv() {
        return LoRAConfig.builder().setTargetModules("q_proj", "v_proj").build();
    }

    private static LoRAConfig sql() {
        return LoRAConfig.builder().setTargetModules("v_proj", "o_proj").optR(4).build();
    }

    @Test
    void namedAdapters() throws IOException {
        Path modelDir = Fixtures.stories260K();
        LoRAConfig config = qv();
        LoRAConfig sqlConfig = sql();
        // snippet:start named-adapters
        LoRAModel model = new LoRAModel(
                LlamaForCausalLM.fromPretrained(modelDir, manager), config);    // "default"
        model.addAdapter("sql", sqlConfig);       // inactive and frozen
        model.setAdapter("sql");                  // the forward pass and training use "sql" only
        model.setAdapters("default", "sql");      // both: on each layer their deltas add
        model.getActiveAdapters();                // [default, sql]
        model.merge(true, "sql");                 // fold "sql" into W; "default" stays a branch
        model.unmerge();
        model.setAdapter("default");
        model.deleteAdapter("sql");               // inactive and unmerged; its arrays are freed
        // snippet:end named-adapters
        assertEquals(List.of("default"), model.getAdapterNames());
        assertEquals(false, model.isMerged());
    }

    @Test
    void adapterSet() throws IOException {
        Path modelDir = Fixtures.stories260K();
        Path setDir = dir.resolve("set");
        LoRAConfig sqlConfig = sql();
        LoRAModel model = new LoRAModel(LlamaForCausalLM.fromPretrained(modelDir, manager), qv());
        // snippet:start adapter-set
        model.addAdapter("sql", sqlConfig);
        model.savePretrained(setDir);                      // setDir/: default, setDir/sql/: sql
        model.savePretrained(setDir, List.of("sql"));      // selected_adapters: only setDir/sql/
        LoRAModel restored = LoRAModel.fromPretrained(
                LlamaForCausalLM.fromPretrained(modelDir, manager), setDir);
        restored.getAdapterNames();                        // [default, sql]
        restored.loadAdapter(setDir.resolve("sql"), "sql2");
        // snippet:end adapter-set
        assertEquals(List.of("default", "sql", "sql2"), restored.getAdapterNames());
        assertTrue(Files.isRegularFile(setDir.resolve("sql").resolve("adapter_config.json")));
    }

    @Test
    void hotswap() throws IOException {
        Path modelDir = Fixtures.stories260K();
        Path newSqlDir = dir.resolve("new-sql");
        new LoRAModel(LlamaForCausalLM.fromPretrained(modelDir, manager), sql())
                .savePretrained(newSqlDir);
        LoRAModel model = new LoRAModel(LlamaForCausalLM.fromPretrained(modelDir, manager), qv());
        model.addAdapter("sql", sql());
        Object before =
                model.getLoRALayers("sql").values().iterator().next().getBranch("sql").getLoraA();
        // snippet:start hotswap
        model.hotswapAdapter(newSqlDir, "sql");    // the same Parameter objects, new values
        // snippet:end hotswap
        assertTrue(
                before
                        == model.getLoRALayers("sql").values().iterator().next()
                                .getBranch("sql").getLoraA(),
                "swapped in place");
    }

    @Test
    void mixedBatch() throws IOException {
        Path modelDir = Fixtures.stories260K();
        LlamaForCausalLM llama = LlamaForCausalLM.fromPretrained(modelDir, manager);
        LoRAModel model = new LoRAModel(llama, qv());
        model.addAdapter("sql", sql());
        List<int[]> prompts = List.of(new int[] {1, 403}, new int[] {1, 9}, new int[] {1, 7, 22});
        GenerationConfig generation = GenerationConfig.builder().optMaxNewTokens(4).build();
        // snippet:start mixed-batch
        CausalLMGenerator generator = new CausalLMGenerator(llama);
        List<int[]> outputs;
        try (AdapterScope rows = model.forAdapterRows(
                List.of("sql", LoRAModel.BASE_ADAPTER, "default"))) {
            outputs = generator.generate(prompts, generation, manager);
        }
        // snippet:end mixed-batch
        List<int[]> seen = outputs;
        assertEquals(3, seen.size());
        try (AdapterScope base = model.disableAdapter()) {
            int[] alone = generator.generate(List.of(prompts.get(1)), generation, manager).get(0);
            // a greedy path clear of rounding: the batch's row, rounded otherwise, takes it too
            LlamaRounding.assertClearGreedyPath(
                    model, llama.getConfig(), alone, prompts.get(1).length, 0, manager, "base row");
            assertArrayEquals(
                    alone, seen.get(1), "the __base__ row generates what the base model generates");
        }
    }

    @Test
    void paddleAdapter() throws IOException {
        Path modelDir = dir.resolve("tiny");
        LlamaConfig tiny = LlamaConfig.builder().setSizes(32, 64, 2, 4, 2, 64).build();
        LlamaCheckpoints.save(LlamaForCausalLM.random(tiny, manager, 16), modelDir);
        Path paddleDir =
                Path.of("..", "..", "peft-lora", "src", "test", "resources", "paddle", "lora");
        // snippet:start paddle-adapter
        LoRAModel fromPaddle = LoRAModel.fromPretrained(
                LlamaForCausalLM.fromPretrained(modelDir, manager), paddleDir);
        // snippet:end paddle-adapter
        assertTrue(fromPaddle.getLoRALayers().size() > 0);
    }

    @Test
    void chineseGuide() throws IOException {
        Path modelDir = Fixtures.stories260K();
        Path loraDir = dir.resolve("lora_path");
        Path prefixDir = dir.resolve("prefix_path");
        // snippet:start zh-lora-config
        // 与 PaddleNLP 示例相同的目标模块：每个整条路径都要匹配（re.fullmatch）
        List<String> targetModules = List.of(
                ".*q_proj.*", ".*v_proj.*", ".*k_proj.*", ".*o_proj.*",
                ".*gate_proj.*", ".*down_proj.*", ".*up_proj.*");
        LoRAConfig loraConfig = LoRAConfig.builder()
                .setTargetModules(targetModules)
                .optR(8)                    // r
                .optLoraAlpha(16)           // lora_alpha，缩放为 alpha / r
                .optMergeWeights(true)      // merge_weights：eval() 合并，train() 拆回
                .build();
        // snippet:end zh-lora-config
        // snippet:start zh-lora-model
        LlamaForCausalLM llama = LlamaForCausalLM.fromPretrained(modelDir, manager);
        LoRAModel model = new LoRAModel(llama, loraConfig);  // 匹配到的 Linear 换成 LoRALinear
        // snippet:end zh-lora-model
        // snippet:start zh-lora-trainable
        model.markOnlyLoRAAsTrainable();   // 只有 lora_A、lora_B 需要梯度
        model.printTrainableParameters();  // trainable params: ... || all params: ... || trainable%: ...
        // snippet:end zh-lora-trainable
        // snippet:start zh-lora-save-load
        model.savePretrained(loraDir);     // adapter_config.json + adapter_model.safetensors
        LlamaForCausalLM base = LlamaForCausalLM.fromPretrained(modelDir, manager);
        LoRAModel loaded = LoRAModel.fromPretrained(base, loraDir);
        loaded.eval();                     // merge_weights 为 true 时合并进底座权重
        // snippet:end zh-lora-save-load
        assertSavedEqualsLive(loraDir, model);
        // 7 projections of every layer, each r (in + out)
        LlamaConfig sizes = llama.getConfig();
        long hidden = sizes.getHiddenSize();
        long kv = (long) sizes.getNumKeyValueHeads() * sizes.getHeadDim();
        long inter = sizes.getIntermediateSize();
        long perLayer = 8 * (2 * (hidden + hidden) + 2 * (hidden + kv) + 3 * (hidden + inter));
        assertEquals(perLayer * sizes.getNumHiddenLayers(), model.countTrainableParameters());

        // snippet:start zh-lora-parallel
        Communicator world = Communicators.fromEnvironment();  // mpirun 下为 Open MPI，否则单进程
        TensorParallel group = TensorParallel.of(world);      // tensor_parallel_degree = 进程数
        LlamaForCausalLM split = LlamaForCausalLM.fromPretrained(modelDir, manager, group, false);
        LoRAModel parallel = new LoRAModel(split, loraConfig.toBuilder()
                .optTensorParallelDegree(group.getDegree())
                .build());                                    // Column/RowParallelLoRALinear
        parallel.savePretrained(loraDir.resolve("merged"), true); // merge_tensor_parallel：rank 0 写一个文件
        // snippet:end zh-lora-parallel
        assertEquals(model.countTrainableParameters(), parallel.countTrainableParameters());

        LlamaForCausalLM otherLlama = LlamaForCausalLM.fromPretrained(modelDir, manager);
        llama = LlamaForCausalLM.fromPretrained(modelDir, manager);
        // snippet:start zh-prefix
        PrefixConfig prefixConfig = PrefixConfig.builder()
                .fromModel(llama)            // 层数、头数、kv 头数（multi_query_group_num）、隐藏维度
                .setNumPrefixTokens(64)      // num_prefix_tokens
                .optPrefixProjection(256)    // prefix_projection，可省略
                .build();
        PrefixModelForCausalLM prefixModel = new PrefixModelForCausalLM(llama, prefixConfig);
        prefixModel.markOnlyPrefixAsTrainable();
        prefixModel.printTrainableParameters();
        prefixModel.savePretrained(prefixDir);  // prefix_config.json + HF 格式 adapter
        PrefixModelForCausalLM prefixLoaded = PrefixModelForCausalLM.fromPretrained(otherLlama, prefixDir);
        // snippet:end zh-prefix
        assertTrue(Files.isRegularFile(prefixDir.resolve("prefix_config.json")));
        assertEquals(prefixModel.countTrainableParameters(), prefixLoaded.countTrainableParameters());
    }

    @Test
    void gpuDevice() throws IOException {
        Path modelDir = Fixtures.stories260K();
        String deviceName = "cpu"; // the page's "gpu"; the build's machines have none
        LoRAConfig loraConfig = LoRAConfig.builder().setTargetModules(".*q_proj.*", ".*v_proj.*").build();
        List<int[]> prompts = List.of(new int[] {1});
        GenerationConfig generationConfig = GenerationConfig.builder().optMaxNewTokens(5).build();
        // snippet:start gpu-device
        Device device = Devices.resolve(deviceName);              // "cpu", "gpu" or "gpu:1"
        NDManager manager = NDManager.newBaseManager(device);     // what it creates lives on device
        LlamaForCausalLM llama = LlamaForCausalLM.fromPretrained(modelDir, manager);
        LoRAModel lora = new LoRAModel(llama, loraConfig);        // A and B beside the weights they adapt
        List<int[]> out = new CausalLMGenerator(lora, llama.getNumHiddenLayers())
                .generate(prompts, generationConfig, manager);     // batches under the same manager
        // snippet:end gpu-device
        try {
            assertEquals(6, out.get(0).length, "the prompt and five tokens");
            for (var parameter : org.peft4j.core.tree.BlockPaths.parameters(lora).entrySet()) {
                assertEquals(device, parameter.getValue().getArray().getDevice(), parameter.getKey());
            }
            if (ai.djl.engine.Engine.getInstance().getGpuCount() == 0) {
                IllegalStateException refused =
                        org.junit.jupiter.api.Assertions.assertThrows(
                                IllegalStateException.class, () -> Devices.resolve("gpu"));
                assertTrue(refused.getMessage().contains("sees 0 GPUs"), refused.getMessage());
            }
        } finally {
            manager.close();
        }
    }

    private float[] forward(Block block, NDArray x) {
        return block.forward(new ParameterStore(manager, false), new NDList(x), false)
                .singletonOrThrow()
                .toFloatArray();
    }

    /** Every tensor in the saved file equals the trainable parameter of the same count. */
    private void assertSavedEqualsLive(Path adapterDir, org.peft4j.core.PeftModel model)
            throws IOException {
        try (SafetensorsReader reader =
                SafetensorsReader.open(adapterDir.resolve("adapter_model.safetensors"))) {
            long saved = 0;
            for (String name : reader.getTensors().keySet()) {
                saved += reader.read(name, manager).size();
            }
            assertEquals(model.countTrainableParameters(), saved, "parameters in the file");
        }
    }

    private void assertSameTensors(Path expected, Path actual) throws IOException {
        try (SafetensorsReader a = SafetensorsReader.open(expected);
                SafetensorsReader b = SafetensorsReader.open(actual)) {
            assertEquals(a.getTensors().keySet(), b.getTensors().keySet());
            for (String name : a.getTensors().keySet()) {
                assertSameBits(
                        a.read(name, manager).toFloatArray(),
                        b.read(name, manager).toFloatArray(),
                        name + ": loaded and saved again, a copy");
            }
        }
    }
}
