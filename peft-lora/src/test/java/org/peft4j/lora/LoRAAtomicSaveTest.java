package org.peft4j.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertSameParameters;

import ai.djl.ndarray.NDManager;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.PeftModel;
import org.peft4j.core.io.WriteSteps;
import org.peft4j.core.testing.Crashes;

import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * LoRA saves are all or nothing for the directory: killed after every step of a save over an
 * existing adapter, the next load finds exactly the old adapter or exactly the new one, file for
 * file, never new weights beside the old config (which, with the same r and another alpha, would
 * load without a word and compute another model).
 */
class LoRAAtomicSaveTest {

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

    private LoRAModel trained(int r, double alpha, int seed) {
        LoRAModel model =
                new LoRAModel(
                        TestModels.mlp(manager, 1),
                        LoRAConfig.builder()
                                .setTargetModules("0", "2", "4")
                                .optR(r)
                                .optLoraAlpha(alpha)
                                .build());
        manager.getEngine().setRandomSeed(seed);
        for (LoRALinear layer : model.getLoRALayers().values()) {
            layer.getLoraB().getArray().addi(manager.randomNormal(layer.getLoraB().getShape()));
        }
        return model;
    }

    @Test
    void killedAfterEveryStepTheSameRAndANewAlphaLoadAsTheOldOrTheNewAdapter() throws Exception {
        killAtEveryStep(trained(2, 4, 1), trained(2, 16, 2));
    }

    @Test
    void killedAfterEveryStepAnotherRLoadsAsTheOldOrTheNewAdapter() throws Exception {
        killAtEveryStep(trained(2, 4, 1), trained(4, 4, 2));
    }

    private void killAtEveryStep(LoRAModel old, LoRAModel next) throws Exception {
        Path oldFiles = root.resolve("old");
        Path newFiles = root.resolve("new");
        old.savePretrained(oldFiles);
        next.savePretrained(newFiles);
        Path dir = root.resolve("adapter");
        List<String> seen = new ArrayList<>();
        int steps =
                Crashes.killAtEveryStep(
                        () -> {
                            Crashes.deleteTree(dir);
                            old.savePretrained(dir);
                        },
                        () -> next.savePretrained(dir),
                        kill -> {
                            LoRAModel loaded =
                                    LoRAModel.fromPretrained(TestModels.mlp(manager, 1), dir);
                            LoRAModel expected = kill.committed ? next : old;
                            assertEquals(
                                    Crashes.snapshot(kill.committed ? newFiles : oldFiles),
                                    Crashes.snapshot(dir),
                                    "killed after " + kill.step + ": the files");
                            assertEquals(
                                    expected.getPeftConfig(),
                                    loaded.getPeftConfig(),
                                    "killed after " + kill.step);
                            assertSameParameters(
                                    expected.getTrainableParameters(),
                                    loaded.getTrainableParameters(),
                                    "killed after " + kill.step);
                            assertEquals(List.of(), Crashes.leftovers(dir));
                            seen.add(kill.step + (kill.committed ? ":new" : ":old"));
                        });
        assertTrue(steps > 8, seen.toString());
        assertTrue(seen.contains("SWAPPED:new") && seen.contains("STAGED:old"), seen.toString());
    }

    @Test
    void aSaveReplacesEveryAdapterFileKeepsTheRestAndUsesTheUmask() throws IOException {
        Path dir = Files.createDirectories(root.resolve("adapter"));
        Files.writeString(dir.resolve("README.md"), "my notes");
        Files.createDirectories(dir.resolve("checkpoint-10"));
        for (String stale :
                new String[] {
                    "adapter_model.tp00-of-02.safetensors",
                    "adapter_model.tp01-of-02.safetensors",
                    "prefix_encoder.safetensors",
                    "prefix_config.json"
                }) {
            Files.writeString(dir.resolve(stale), "from an earlier save");
        }
        trained(2, 4, 1).savePretrained(dir);
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(
                    List.of(
                            "README.md",
                            "adapter_config.json",
                            PeftModel.WEIGHTS_FILE,
                            "checkpoint-10",
                            "lora_config.json"),
                    files.map(p -> p.getFileName().toString()).sorted().toList());
        }
        assertEquals("my notes", Files.readString(dir.resolve("README.md")));

        Path probe = root.resolve("probe");
        new FileOutputStream(probe.toFile()).close();
        String mode = PosixFilePermissions.toString(Files.getPosixFilePermissions(probe));
        for (String name : new String[] {"adapter_config.json", PeftModel.WEIGHTS_FILE}) {
            assertEquals(
                    mode,
                    PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve(name))),
                    name + " has a new file's permissions");
        }
    }

    @Test
    void aFullDiskFailsNamingTheFileAndTheOldAdapterStillLoads() throws IOException {
        Path dir = root.resolve("adapter");
        LoRAModel old = trained(2, 4, 1);
        old.savePretrained(dir);
        IOException full;
        try (WriteSteps.Listening l = Crashes.fullDiskWhenWriting("adapter_config.json")) {
            full = assertThrows(IOException.class, () -> trained(2, 16, 2).savePretrained(dir));
        }
        Path real = dir.toRealPath();
        assertEquals(
                "cannot write "
                        + real.resolve("adapter_config.json")
                        + ": No space left on device; "
                        + real
                        + " is unchanged",
                full.getMessage());
        assertSameParameters(
                old.getTrainableParameters(),
                LoRAModel.fromPretrained(TestModels.mlp(manager, 1), dir).getTrainableParameters(),
                "the old adapter after the failure");
        assertEquals(List.of(), Crashes.leftovers(dir));
    }

    @Test
    void aFileIsNotADirectoryToSaveInto() throws IOException {
        Path file = Files.writeString(root.resolve("adapter"), "mine");
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class, () -> trained(2, 4, 1).savePretrained(file));
        assertTrue(e.getMessage().contains("is a file, not a directory"), e.getMessage());
        assertEquals("mine", Files.readString(file));
        assertFalse(Files.exists(root.resolve(".adapter.staging")));
    }
}
