package org.peft4j.cli.quickstart;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

class LoRAQuickstartTest {

    @Test
    void loraAdaptsTheNetworkAndTheSavedAdapterReproducesIt(@TempDir Path dir) throws IOException {
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        LoRAQuickstart.Result result =
                new LoRAQuickstart(new PrintStream(log, true, StandardCharsets.UTF_8)).run(dir, 42);
        assertTrue(
                result.adaptedLossOnB() < 0.5f * result.baseLossOnB(),
                result.baseLossOnB() + " -> " + result.adaptedLossOnB());
        // three layers 16->128->128->16 at r = 4: r * (in + out) each
        assertEquals(
                4 * (16 + 128) + 4 * (128 + 128) + 4 * (128 + 16), result.trainableParameters());
        assertEquals(0f, result.reloadDiff());
        assertTrue(Files.isRegularFile(dir.resolve("adapter_model.safetensors")));
        assertTrue(log.toString(StandardCharsets.UTF_8).contains("task B loss"));
    }
}
