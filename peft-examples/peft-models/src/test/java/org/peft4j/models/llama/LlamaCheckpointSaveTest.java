package org.peft4j.models.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertSameParameters;

import ai.djl.ndarray.NDManager;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.testing.Crashes;
import org.peft4j.core.testing.Fixtures;
import org.peft4j.core.tree.BlockPaths;
import org.peft4j.models.llama.weights.LlamaCheckpoints;

import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * A merged checkpoint is saved all or nothing: killed after every step of a save over another
 * checkpoint, the next load finds exactly the old or exactly the new one; its files and the
 * tokenizer copied beside them get a new file's permissions.
 */
class LlamaCheckpointSaveTest {

    private static final LlamaConfig SMALL =
            LlamaConfig.builder().setSizes(16, 32, 2, 4, 2, 50).build();

    @TempDir Path root;

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    @Test
    void killedAfterEveryStepTheNextLoadFindsTheOldOrTheNewCheckpoint() throws Exception {
        LlamaForCausalLM old = LlamaForCausalLM.random(SMALL, manager, 1);
        LlamaForCausalLM next = LlamaForCausalLM.random(SMALL, manager, 2);
        Path oldFiles = root.resolve("old");
        Path newFiles = root.resolve("new");
        LlamaCheckpoints.save(old, oldFiles);
        LlamaCheckpoints.save(next, newFiles);
        Path dir = root.resolve("merged");
        List<String> seen = new ArrayList<>();
        int steps =
                Crashes.killAtEveryStep(
                        () -> {
                            Crashes.deleteTree(dir);
                            LlamaCheckpoints.save(old, dir);
                        },
                        () -> LlamaCheckpoints.save(next, dir),
                        kill -> {
                            String what = "killed after " + kill.step;
                            LlamaForCausalLM loaded = LlamaCheckpoints.load(dir, manager);
                            assertEquals(
                                    Crashes.snapshot(kill.committed ? newFiles : oldFiles),
                                    Crashes.snapshot(dir),
                                    what + ": the files");
                            assertSameParameters(
                                    BlockPaths.parameters(kill.committed ? next : old),
                                    BlockPaths.parameters(loaded),
                                    what);
                            assertEquals(List.of(), Crashes.leftovers(dir), what);
                            seen.add(kill.step + (kill.committed ? ":new" : ":old"));
                        });
        assertTrue(steps > 8, seen.toString());
        assertTrue(seen.contains("STAGED:old") && seen.contains("SWAPPED:new"), seen.toString());
    }

    @Test
    void aSaveReplacesEveryCheckpointFileAndKeepsTheRest() throws IOException {
        Path dir = Files.createDirectories(root.resolve("merged"));
        for (String stale :
                new String[] {
                    "model-00001-of-00002.safetensors",
                    "model-00002-of-00002.safetensors",
                    "model.safetensors.index.json",
                    "generation_config.json"
                }) {
            Files.writeString(dir.resolve(stale), "from an earlier save");
        }
        Files.writeString(dir.resolve("tokenizer.json"), "{}");
        LlamaCheckpoints.save(LlamaForCausalLM.random(SMALL, manager, 1), dir);
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(
                    List.of("config.json", "model.safetensors", "tokenizer.json"),
                    files.map(p -> p.getFileName().toString()).sorted().toList());
        }
    }

    @Test
    void theCheckpointAndTheCopiedTokenizerGetANewFilesPermissions() throws IOException {
        Path probe = root.resolve("probe");
        new FileOutputStream(probe.toFile()).close();
        String mode = PosixFilePermissions.toString(Files.getPosixFilePermissions(probe));
        assumeTrue(!mode.equals("rw-------"), "under umask 077 a private source looks the same");
        Path model = Files.createDirectories(root.resolve("base"));
        Path tokenizer = Files.writeString(model.resolve("tokenizer.bin"), "tokens");
        Files.setPosixFilePermissions(tokenizer, PosixFilePermissions.fromString("rw-------"));

        Path dir = root.resolve("merged");
        LlamaCheckpoints.save(LlamaForCausalLM.random(SMALL, manager, 1), dir);
        LlamaCheckpoints.copyTokenizer(model, dir);
        for (String name : new String[] {"config.json", "model.safetensors", "tokenizer.bin"}) {
            assertEquals(
                    mode,
                    PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve(name))),
                    name + " has a new file's permissions, not its source's");
        }
    }

    @Test
    void theCopiedTokenizerKeepsTheFilesThatStopGenerationAndRenderChats() throws IOException {
        // TinyLlama's folder: tokenizer.json, its configs, generation_config.json and
        // chat_template.jinja beside config.json
        Path tiny = Fixtures.root().resolve("tokenizers/tinyllama-1.1b-chat-v1.0");
        Path dir = Files.createDirectories(root.resolve("copied"));
        LlamaCheckpoints.copyTokenizer(tiny, dir);
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(
                    List.of(
                            "chat_template.jinja",
                            "generation_config.json",
                            "special_tokens_map.json",
                            "tokenizer.json",
                            "tokenizer_config.json"),
                    files.map(p -> p.getFileName().toString()).sorted().toList());
        }
        for (String name : new String[] {"chat_template.jinja", "generation_config.json"}) {
            assertEquals(
                    Files.readString(tiny.resolve(name)),
                    Files.readString(dir.resolve(name)),
                    name);
        }
    }
}
