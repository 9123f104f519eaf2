package org.peft4j.prefix;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertSameParameters;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.PeftModel;
import org.peft4j.core.testing.Crashes;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Prefix saves are all or nothing for the directory (four files, two weight files written by two
 * collective saves): killed after every step, the next load finds exactly the old prefix or
 * exactly the new one, and an encoder of an earlier save never stays beside a prefix without one.
 */
class PrefixAtomicSaveTest {

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

    private PrefixModelForCausalLM trained(int tokens, int projection, int seed) {
        TinyDecoder base = TinyDecoder.create(manager, 1);
        PrefixConfig.Builder config = PrefixModelTest.config(base, tokens);
        if (projection > 0) {
            config.optPrefixProjection(projection);
        }
        PrefixModelForCausalLM model = new PrefixModelForCausalLM(base, config.build());
        manager.getEngine().setRandomSeed(seed);
        NDArray table = model.getPrefixEncoder().getEmbedding().getArray();
        table.addi(manager.randomNormal(table.getShape()));
        return model;
    }

    @Test
    void killedAfterEveryStepAPrefixWithAProjectionOverOneWithoutLoadsAsEither()
            throws Exception {
        killAtEveryStep(trained(8, 0, 1), trained(16, 10, 2));
    }

    @Test
    void killedAfterEveryStepAPrefixWithoutAProjectionOverOneWithLoadsAsEither()
            throws Exception {
        killAtEveryStep(trained(16, 10, 2), trained(8, 0, 1));
    }

    private void killAtEveryStep(PrefixModelForCausalLM old, PrefixModelForCausalLM next)
            throws Exception {
        Path oldFiles = root.resolve("old");
        Path newFiles = root.resolve("new");
        old.savePretrained(oldFiles);
        next.savePretrained(newFiles);
        Path dir = root.resolve("prefix");
        List<String> seen = new ArrayList<>();
        Crashes.killAtEveryStep(
                () -> {
                    Crashes.deleteTree(dir);
                    old.savePretrained(dir);
                },
                () -> next.savePretrained(dir),
                kill -> {
                    PeftModel loaded = PeftModel.fromPretrained(TinyDecoder.create(manager, 1), dir);
                    PrefixModelForCausalLM expected = kill.committed ? next : old;
                    assertEquals(
                            Crashes.snapshot(kill.committed ? newFiles : oldFiles),
                            Crashes.snapshot(dir),
                            "killed after " + kill.step + ": the files");
                    assertEquals(
                            expected.getPeftConfig().getNumPrefixTokens(),
                            ((PrefixModelForCausalLM) loaded).getPeftConfig().getNumPrefixTokens(),
                            "killed after " + kill.step);
                    assertSameParameters(
                            expected.getTrainableParameters(),
                            loaded.getTrainableParameters(),
                            "killed after " + kill.step);
                    assertEquals(List.of(), Crashes.leftovers(dir));
                    seen.add(kill.step + (kill.committed ? ":new" : ":old"));
                });
        assertTrue(seen.contains("SWAPPED:new") && seen.contains("STAGED:old"), seen.toString());
        assertEquals(
                next.getPrefixEncoder().hasProjection(),
                Files.exists(dir.resolve(PrefixCheckpoint.ENCODER_FILE)));
        assertFalse(Files.exists(root.resolve(".prefix.old")));
    }
}
