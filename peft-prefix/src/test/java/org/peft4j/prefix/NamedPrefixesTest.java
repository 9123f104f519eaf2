package org.peft4j.prefix;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertRoundingClose;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;
import static org.peft4j.core.testing.ArrayAssertions.floats;
import static org.peft4j.core.testing.ArrayAssertions.maxAbs;
import static org.peft4j.core.testing.ArrayAssertions.maxAbsDiff;

import ai.djl.Model;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.Trainer;
import ai.djl.training.loss.L2Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import ai.djl.util.PairList;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.AdapterScope;
import org.peft4j.core.PeftModel;
import org.peft4j.core.lm.CausalLanguageModel;
import org.peft4j.core.lm.TokenCrossEntropy;
import org.peft4j.core.parallel.ShardGroup;
import org.peft4j.core.testing.Crashes;
import org.peft4j.core.tree.BlockPaths;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Several named prefixes on one model, as Hugging Face PEFT names adapters: the active one computes
 * what a model with only that prefix computes, only it trains, and saves lay the set out as Hugging
 * Face does ({@code default} at the root, others in subfolders) and restore it.
 */
class NamedPrefixesTest {


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

    private float[] logits(Block model) {
        NDArray ids = manager.create(new long[] {4, 5, 6, 7, 1, 2}).reshape(2, 3);
        return floats(
                model.forward(new ParameterStore(manager, false), new NDList(ids), false).head());
    }

    /** Moves every parameter of an encoder away from its start, so that a copy is not a draw. */
    private void perturb(PrefixEncoder encoder, int seed) {
        manager.getEngine().setRandomSeed(seed);
        for (Parameter p : encoder.getParameters().values()) {
            NDArray array = p.getArray();
            array.addi(manager.randomNormal(array.getShape()));
        }
    }

    private static Map<String, float[]> snapshot(Block block) {
        return PrefixModelTest.snapshot(block);
    }

    private static void assertSameArrays(Map<String, float[]> a, Block b, String what) {
        Map<String, float[]> other = snapshot(b);
        assertEquals(a.keySet(), other.keySet(), what + ": parameter paths");
        a.forEach((path, values) -> assertSameBits(values, other.get(path), what + ": " + path));
    }

    /** A single-prefix model of the config, on {@code base}, its encoder a copy of {@code from}. */
    private static PrefixModelForCausalLM singleWith(
            TinyDecoder base, PrefixConfig config, PrefixEncoder from) {
        PrefixModelForCausalLM single = new PrefixModelForCausalLM(base, config);
        Map<String, Parameter> target = BlockPaths.parameters(single.getPrefixEncoder());
        Map<String, Parameter> source = BlockPaths.parameters(from);
        assertEquals(source.keySet(), target.keySet());
        source.forEach((path, p) -> target.get(path).getArray().set(p.getArray().toFloatArray()));
        return single;
    }

    private static PrefixConfig plain(TinyDecoder base) {
        return PrefixModelTest.config(base, 5).build();
    }

    private static PrefixConfig projected(TinyDecoder base) {
        return PrefixModelTest.config(base, 3).optPrefixProjection(6).build();
    }

    /** A model with {@code default} (5 tokens) and {@code b} (3 tokens, a projection). */
    private PrefixModelForCausalLM twoPrefixes(TinyDecoder base) {
        PrefixModelForCausalLM model = new PrefixModelForCausalLM(base, plain(base));
        model.addAdapter("b", projected(base));
        perturb(model.getPrefixEncoder(), 11);
        perturb(model.getPrefixEncoder("b"), 12);
        return model;
    }

    @Test
    void theActivePrefixComputesWhatAModelWithOnlyThatPrefixComputes() {
        TinyDecoder base = TinyDecoder.create(manager, 1);
        PrefixModelForCausalLM model = twoPrefixes(base);
        assertEquals(List.of("default", "b"), model.getAdapterNames());
        assertEquals("default", model.getActiveAdapter());
        float[] withDefault = logits(model);

        model.setAdapter("b");
        assertEquals("b", model.getActiveAdapter());
        assertSame(model.getPrefixEncoder("b"), model.getPrefixEncoder());
        assertSame(model.getPeftConfig("b"), model.getPeftConfig());
        assertEquals(3, model.getPeftConfig().getNumPrefixTokens());
        float[] withB = logits(model);
        // the reference: a fresh model with one prefix, b's config and a copy of b's arrays
        float[] expectedB = logits(singleWith(base, projected(base), model.getPrefixEncoder("b")));
        assertRoundingClose(expectedB, withB, PrefixModelTest.ROUNDING, "b active");
        assertTrue(
                maxAbsDiff(withDefault, withB) > 1e-2 * maxAbs(withDefault),
                "the two prefixes give other logits");

        model.setAdapter("default");
        float[] expectedDefault = logits(singleWith(base, plain(base), model.getPrefixEncoder()));
        assertRoundingClose(
                expectedDefault, logits(model), PrefixModelTest.ROUNDING, "default active again");
        assertRoundingClose(
                expectedDefault, withDefault, PrefixModelTest.ROUNDING, "default before b");
    }

    @Test
    void disabledTheModelIsTheBaseModelWhicheverPrefixIsActive() {
        TinyDecoder base = TinyDecoder.create(manager, 1);
        PrefixModelForCausalLM model = twoPrefixes(base);
        model.setAdapter("b");
        float[] expected = logits(base);
        try (AdapterScope scope = model.disableAdapter()) {
            assertRoundingClose(expected, logits(model), PrefixModelTest.ROUNDING, "disabled");
        }
        assertTrue(maxAbsDiff(expected, logits(model)) > 1e-2 * maxAbs(expected), "enabled again");
    }

    @Test
    void onlyTheActivePrefixTrainsAndTheOtherStaysBitForBit() {
        TinyDecoder base = TinyDecoder.create(manager, 5);
        PrefixModelForCausalLM model = twoPrefixes(base);
        model.setAdapter("b");
        for (Parameter p : model.getPrefixEncoder("b").getParameters().values()) {
            assertTrue(p.requiresGradient(), p.getName() + " of the active prefix trains");
        }
        for (Parameter p : model.getPrefixEncoder("default").getParameters().values()) {
            assertFalse(p.requiresGradient(), p.getName() + " of the inactive prefix is frozen");
        }
        for (Parameter p : base.getParameters().values()) {
            assertFalse(p.requiresGradient(), p.getName() + " of the base is frozen");
        }
        // b: embedding [3, 16], Linear 16 -> 6 (+ bias), Linear 6 -> 32 (+ bias)
        int width = 2 * 2 * 2 * 4;
        long bCount = 3 * 16 + (16 * 6 + 6) + (6 * width + width);
        assertEquals(bCount, model.countTrainableParameters());
        assertTrue(
                model.getTrainableParameters().keySet().stream()
                        .allMatch(path -> path.startsWith("prefix_encoder.b.")),
                model.getTrainableParameters().keySet().toString());
        long baseCount =
                BlockPaths.parameters(base).values().stream()
                        .mapToLong(p -> p.getShape().size())
                        .sum();
        assertEquals(baseCount + 5 * width + bCount, model.countAllParameters());

        Map<String, float[]> baseBefore = snapshot(base);
        Map<String, float[]> defaultBefore = snapshot(model.getPrefixEncoder("default"));
        Map<String, float[]> bBefore = snapshot(model.getPrefixEncoder("b"));
        NDArray x = manager.create(new long[] {1, 2, 3, 4, 5, 6, 7, 8}).reshape(2, 4);
        try (Model holder = Model.newInstance("prefix")) {
            holder.setBlock(model);
            DefaultTrainingConfig training =
                    new DefaultTrainingConfig(new L2Loss())
                            .optOptimizer(
                                    Optimizer.adam()
                                            .optLearningRateTracker(Tracker.fixed(1e-2f))
                                            .build());
            try (Trainer trainer = holder.newTrainer(training)) {
                for (int step = 0; step < 5; step++) {
                    try (GradientCollector collector = trainer.newGradientCollector()) {
                        NDArray out = trainer.forward(new NDList(x)).head();
                        collector.backward(TokenCrossEntropy.loss(out, x));
                    }
                    trainer.step();
                }
            }
        }
        assertSameArrays(baseBefore, base, "the frozen base");
        assertSameArrays(defaultBefore, model.getPrefixEncoder("default"), "the inactive prefix");
        Map<String, float[]> bAfter = snapshot(model.getPrefixEncoder("b"));
        bBefore.forEach(
                (path, values) ->
                        assertTrue(maxAbsDiff(values, bAfter.get(path)) > 1e-4, path + " moved"));

        model.setAdapter("default");
        assertEquals(5L * width, model.countTrainableParameters());
        assertEquals(
                List.of("prefix_encoder.embedding.weight"),
                List.copyOf(model.getTrainableParameters().keySet()));
    }

    private static Set<String> entries(Path dir) throws IOException {
        try (Stream<Path> list = Files.list(dir)) {
            return list.map(p -> p.getFileName().toString())
                    .collect(Collectors.toCollection(TreeSet::new));
        }
    }

    @Test
    void savesDefaultAtTheRootAndOthersInSubfoldersAndRestoresTheSet() throws IOException {
        TinyDecoder base = TinyDecoder.create(manager, 1);
        PrefixModelForCausalLM model = twoPrefixes(base);
        model.addAdapter("a.1", plain(base));
        perturb(model.getPrefixEncoder("a.1"), 13);
        model.setAdapter("b");
        Path saved = dir.resolve("set");
        model.savePretrained(saved);

        Set<String> rootFiles =
                Set.of("adapter_config.json", "adapter_model.safetensors", "prefix_config.json");
        Set<String> expected = new TreeSet<>(rootFiles);
        expected.addAll(Set.of("a.1", "b"));
        assertEquals(expected, entries(saved));
        assertEquals(rootFiles, entries(saved.resolve("a.1")));
        Set<String> projectedFiles = new TreeSet<>(rootFiles);
        projectedFiles.add("prefix_encoder.safetensors");
        assertEquals(projectedFiles, entries(saved.resolve("b")));
        // the root is byte for byte what a model with only that prefix writes
        Path single = dir.resolve("single");
        singleWith(base, plain(base), model.getPrefixEncoder("default")).savePretrained(single);
        for (String file : rootFiles) {
            assertEquals(
                    Files.readString(single.resolve(file), StandardCharsets.ISO_8859_1),
                    Files.readString(saved.resolve(file), StandardCharsets.ISO_8859_1),
                    file + " at the root");
        }

        TinyDecoder other = TinyDecoder.create(manager, 1);
        PrefixModelForCausalLM loaded = PrefixModelForCausalLM.fromPretrained(other, saved);
        assertEquals(List.of("default", "a.1", "b"), loaded.getAdapterNames(), "sorted after");
        assertEquals("default", loaded.getActiveAdapter());
        for (String name : model.getAdapterNames()) {
            assertSameArrays(
                    snapshot(model.getPrefixEncoder(name)),
                    loaded.getPrefixEncoder(name),
                    name + " saved and loaded");
        }
        assertEquals(
                List.of("prefix_encoder.embedding.weight"),
                List.copyOf(loaded.getTrainableParameters().keySet()),
                "only default trains after loading");
        // each subfolder is an adapter directory of its own (Hugging Face loads it so)
        PrefixModelForCausalLM alone =
                PrefixModelForCausalLM.fromPretrained(
                        TinyDecoder.create(manager, 1), saved.resolve("b"));
        assertEquals(List.of("default"), alone.getAdapterNames());
        assertSameArrays(
                snapshot(model.getPrefixEncoder("b")), alone.getPrefixEncoder(), "b alone");
    }

    @Test
    void selectedAdaptersAreTheOnlyOnesWrittenAndWithoutDefaultTheRootHasNone() throws IOException {
        TinyDecoder base = TinyDecoder.create(manager, 1);
        PrefixModelForCausalLM model = twoPrefixes(base);
        Path saved = dir.resolve("selected");
        model.savePretrained(saved);
        Files.writeString(saved.resolve("README.md"), "kept");

        model.savePretrained(saved, List.of("b"));
        assertEquals(Set.of("README.md", "b"), entries(saved), "no adapter files at the root");

        model.savePretrained(saved, List.of("default"));
        assertEquals(
                Set.of(
                        "README.md",
                        "adapter_config.json",
                        "adapter_model.safetensors",
                        "prefix_config.json",
                        "b"),
                entries(saved),
                "a subfolder this save does not write stays, as Hugging Face leaves it");

        IllegalArgumentException unknown =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> model.savePretrained(saved, List.of("b", "c")));
        assertTrue(unknown.getMessage().contains("\"c\""), unknown.getMessage());
        assertTrue(unknown.getMessage().contains("[default, b]"), unknown.getMessage());
        assertThrows(IllegalArgumentException.class, () -> model.savePretrained(saved, List.of()));
    }

    @Test
    void aSaveOfTheSetKilledAfterEveryStepLeavesTheOldSetOrTheNew() throws Exception {
        PrefixModelForCausalLM old =
                new PrefixModelForCausalLM(
                        TinyDecoder.create(manager, 1), plain(TinyDecoder.create(manager, 1)));
        perturb(old.getPrefixEncoder(), 21);
        PrefixModelForCausalLM next = twoPrefixes(TinyDecoder.create(manager, 1));
        Path oldFiles = dir.resolve("old");
        Path newFiles = dir.resolve("new");
        old.savePretrained(oldFiles);
        next.savePretrained(newFiles);
        Path target = dir.resolve("prefix");
        List<String> seen = new java.util.ArrayList<>();
        Crashes.killAtEveryStep(
                () -> {
                    Crashes.deleteTree(target);
                    old.savePretrained(target);
                },
                () -> next.savePretrained(target),
                kill -> {
                    PrefixModelForCausalLM loaded =
                            PrefixModelForCausalLM.fromPretrained(
                                    TinyDecoder.create(manager, 1), target);
                    PrefixModelForCausalLM expected = kill.committed ? next : old;
                    assertEquals(
                            Crashes.snapshot(kill.committed ? newFiles : oldFiles),
                            Crashes.snapshot(target),
                            "killed after " + kill.step + ": the files");
                    assertEquals(expected.getAdapterNames(), loaded.getAdapterNames());
                    for (String name : expected.getAdapterNames()) {
                        assertSameArrays(
                                snapshot(expected.getPrefixEncoder(name)),
                                loaded.getPrefixEncoder(name),
                                "killed after " + kill.step + ": " + name);
                    }
                    assertEquals(List.of(), Crashes.leftovers(target));
                    seen.add(kill.step + (kill.committed ? ":new" : ":old"));
                });
        assertTrue(seen.contains("SWAPPED:new") && seen.contains("STAGED:old"), seen.toString());
    }

    @Test
    void namesAreCheckedAndUnknownNamesListTheKnownOnes() {
        TinyDecoder base = TinyDecoder.create(manager, 1);
        PrefixModelForCausalLM model = twoPrefixes(base);
        for (String name :
                new String[] {
                    "",
                    "a/b",
                    "..",
                    ".hidden",
                    "a b",
                    "__base__",
                    "adapter_config.json",
                    "checkpoint-3"
                }) {
            IllegalArgumentException e =
                    assertThrows(
                            IllegalArgumentException.class,
                            () -> model.addAdapter(name, plain(base)),
                            name);
            assertTrue(e.getMessage().contains('"' + name + '"'), e.getMessage());
        }
        for (String used : new String[] {"default", "b"}) {
            IllegalArgumentException e =
                    assertThrows(
                            IllegalArgumentException.class,
                            () -> model.addAdapter(used, plain(base)));
            assertTrue(e.getMessage().contains("already used"), e.getMessage());
        }
        assertThrows(
                IllegalArgumentException.class,
                () -> model.loadAdapter(dir.resolve("nothing"), "b"),
                "a used name is refused before the directory is read");
        for (Runnable call :
                List.<Runnable>of(
                        () -> model.setAdapter("c"),
                        () -> model.getPeftConfig("c"),
                        () -> model.getPrefixEncoder("c"),
                        () -> model.deleteAdapter("c"))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call::run);
            assertTrue(e.getMessage().contains("\"c\""), e.getMessage());
            assertTrue(e.getMessage().contains("[default, b]"), e.getMessage());
        }
        assertEquals(List.of("default", "b"), model.getAdapterNames());
        assertEquals("default", model.getActiveAdapter());
        // a config that does not fit is refused as the constructor refuses it
        TinyDecoder deeper = TinyDecoder.create(manager, 1, 3);
        assertThrows(
                IllegalArgumentException.class,
                () -> model.addAdapter("c", PrefixModelTest.config(deeper, 4).build()));
        assertEquals(List.of("default", "b"), model.getAdapterNames());
    }

    @Test
    void deletingRefusesTheActiveAndUnknownAndFreesTheDeleted() {
        TinyDecoder base = TinyDecoder.create(manager, 1);
        PrefixModelForCausalLM model = twoPrefixes(base);
        model.addAdapter("c", plain(base));
        model.setAdapter("b");
        IllegalStateException active =
                assertThrows(IllegalStateException.class, () -> model.deleteAdapter("b"));
        assertTrue(active.getMessage().contains("setAdapter another first"), active.getMessage());

        List<NDArray> arrays =
                model.getPrefixEncoder("default").getParameters().values().stream()
                        .map(Parameter::getArray)
                        .collect(Collectors.toList());
        Map<String, float[]> c = snapshot(model.getPrefixEncoder("c"));
        model.deleteAdapter("default");
        assertEquals(List.of("b", "c"), model.getAdapterNames());
        assertTrue(arrays.stream().allMatch(NDArray::isReleased), "its arrays are closed");
        assertEquals(3, model.getChildren().size(), "base, b and c");
        Set<String> paths = BlockPaths.parameters(model).keySet();
        assertTrue(paths.contains("prefix_encoder.c.embedding.weight"), paths.toString());
        assertFalse(paths.contains("prefix_encoder.embedding.weight"), paths.toString());
        assertSameArrays(c, model.getPrefixEncoder("c"), "c after deleting another");
        assertTrue(
                model.getNamedParameters().keySet().stream()
                        .noneMatch(path -> path.startsWith("prefix_encoder.embedding")));
        model.addAdapter("default", plain(base));
        assertEquals(List.of("b", "c", "default"), model.getAdapterNames());
        assertTrue(
                BlockPaths.parameters(model).containsKey("prefix_encoder.embedding.weight"),
                "default's encoder is prefix_encoder again");
    }

    @Test
    void aBrokenOrMisfitDirectoryLeavesTheModelAsItWas() throws IOException {
        TinyDecoder base = TinyDecoder.create(manager, 1);
        PrefixModelForCausalLM model = twoPrefixes(base);
        Path saved = dir.resolve("set");
        model.savePretrained(saved);
        PrefixModelForCausalLM target =
                new PrefixModelForCausalLM(TinyDecoder.create(manager, 1), plain(base));
        Map<String, float[]> before = snapshot(target);
        int children = target.getChildren().size();

        // weights cut short (b has a projection: its encoder's file is what loads)
        Path broken = dir.resolve("broken");
        Files.createDirectories(broken);
        for (String file : entries(saved.resolve("b"))) {
            Files.copy(saved.resolve("b").resolve(file), broken.resolve(file));
        }
        for (String file : List.of(PeftModel.WEIGHTS_FILE, PrefixCheckpoint.ENCODER_FILE)) {
            byte[] weights = Files.readAllBytes(broken.resolve(file));
            Files.write(broken.resolve(file), java.util.Arrays.copyOf(weights, weights.length / 2));
        }
        assertThrows(IOException.class, () -> target.loadAdapter(broken, "x"));
        // a prefix for a model with three layers
        Path deeper = dir.resolve("deeper");
        TinyDecoder three = TinyDecoder.create(manager, 1, 3);
        new PrefixModelForCausalLM(three, PrefixModelTest.config(three, 4).build())
                .savePretrained(deeper);
        assertThrows(IllegalArgumentException.class, () -> target.loadAdapter(deeper, "x"));

        assertEquals(List.of("default"), target.getAdapterNames());
        assertEquals(children, target.getChildren().size());
        assertSameArrays(before, target, "the model after refused loads");
        assertEquals(
                List.of("prefix_encoder.embedding.weight"),
                List.copyOf(target.getTrainableParameters().keySet()));

        // a good one then loads as b would
        target.loadAdapter(saved.resolve("b"), "x");
        assertEquals(List.of("default", "x"), target.getAdapterNames());
        assertSameArrays(
                snapshot(model.getPrefixEncoder("b")), target.getPrefixEncoder("x"), "x is b");
        assertFalse(
                target.getPrefixEncoder("x").getEmbedding().requiresGradient(),
                "a loaded prefix is frozen until setAdapter");

        // fromPretrained of a set with a broken subfolder fails naming it, the base untouched
        Files.copy(
                broken.resolve(PrefixCheckpoint.ENCODER_FILE),
                saved.resolve("b").resolve(PrefixCheckpoint.ENCODER_FILE),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        TinyDecoder fresh = TinyDecoder.create(manager, 1);
        IOException e =
                assertThrows(
                        IOException.class,
                        () -> PrefixModelForCausalLM.fromPretrained(fresh, saved));
        assertTrue(e.getMessage().contains("\"b\""), e.getMessage());
        for (Parameter p : fresh.getParameters().values()) {
            assertTrue(p.requiresGradient(), p.getName() + ": trainability put back");
        }
    }

    @Test
    void fromPretrainedReadsOnlySubfoldersThatHoldANamedPrefix() throws IOException {
        TinyDecoder base = TinyDecoder.create(manager, 1);
        PrefixModelForCausalLM model = twoPrefixes(base);
        Path saved = dir.resolve("run");
        model.savePretrained(saved);
        // a training run's checkpoint, a hidden folder and another method's adapter sit beside it
        model.savePretrained(saved.resolve("checkpoint-2"), List.of("default"));
        model.savePretrained(saved.resolve(".hidden"), List.of("default"));
        Path lora = Files.createDirectories(saved.resolve("lora"));
        Files.writeString(lora.resolve("adapter_config.json"), "{\"peft_type\": \"LORA\"}");
        Files.createDirectories(saved.resolve("empty"));

        PrefixModelForCausalLM loaded =
                PrefixModelForCausalLM.fromPretrained(TinyDecoder.create(manager, 1), saved);
        assertEquals(List.of("default", "b"), loaded.getAdapterNames());
        assertEquals(
                List.of("b"),
                PrefixCheckpoint.namedSubfolders(saved),
                "what fromPretrained restores");
    }

    @Test
    void namedPrefixesOnATensorParallelModelAreRefused() {
        TinyDecoder decoder = TinyDecoder.create(manager, 1);
        Split split = new Split(decoder);
        PrefixModelForCausalLM model =
                new PrefixModelForCausalLM(split, PrefixModelTest.config(decoder, 4).build());
        IllegalStateException e =
                assertThrows(
                        IllegalStateException.class,
                        () -> model.addAdapter("b", PrefixModelTest.config(decoder, 4).build()));
        assertTrue(e.getMessage().contains("tensor-parallel"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> model.loadAdapter(dir, "b"));
        assertEquals(List.of("default"), model.getAdapterNames());
    }

    /** A decoder that says it is rank 0 of 2; nothing here communicates. */
    private static final class Split extends AbstractBlock implements CausalLanguageModel {

        private final TinyDecoder decoder;

        Split(TinyDecoder decoder) {
            this.decoder = addChildBlock("decoder", decoder);
        }

        @Override
        protected NDList forwardInternal(
                ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> p) {
            return decoder.forward(ps, inputs, training, p);
        }

        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return decoder.getOutputShapes(inputShapes);
        }

        @Override
        public ShardGroup getShardGroup() {
            return new ShardGroup() {
                @Override
                public int getDegree() {
                    return 2;
                }

                @Override
                public int getRank() {
                    return 0;
                }

                @Override
                public NDArray allGather(NDArray local, int axis) {
                    throw new UnsupportedOperationException();
                }

                @Override
                public void barrier() {}
            };
        }

        @Override
        public int getNumHiddenLayers() {
            return decoder.getNumHiddenLayers();
        }

        @Override
        public int getNumAttentionHeads() {
            return decoder.getNumAttentionHeads();
        }

        @Override
        public int getNumKeyValueHeads() {
            return decoder.getNumKeyValueHeads();
        }

        @Override
        public int getHeadDim() {
            return decoder.getHeadDim();
        }

        @Override
        public int getHiddenSize() {
            return decoder.getHiddenSize();
        }

        @Override
        public int getVocabSize() {
            return decoder.getVocabSize();
        }
    }

    @Test
    void theDocsCodeGivesTheSavedSetBack() throws IOException {
        TinyDecoder llama = TinyDecoder.create(manager, 1);
        TinyDecoder otherLlama = TinyDecoder.create(manager, 1);
        Path prefixDir = dir.resolve("prefixes");
        PrefixConfig config = plain(llama);
        PrefixConfig codeConfig = PrefixModelTest.config(llama, 8).build();
        // the code docs/prefix.md shows (peft-cli's DocSnippetsTest runs it on a Llama)
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
        assertEquals(List.of("code"), loaded.getAdapterNames());
        assertSameArrays(
                snapshot(model.getPrefixEncoder("code")), loaded.getPrefixEncoder(), "code");
        assertTrue(Files.isRegularFile(prefixDir.resolve("code").resolve(PeftModel.WEIGHTS_FILE)));
    }
}
