package org.peft4j.cli.quickstart;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.U;

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
        // The reloaded model holds the same weights (the adapter through the file, the base
        // copied), but a second evaluation is not bitwise guaranteed (MKL's path depends on the
        // buffers): two evaluations of the same math, apart by at most 2 x 1024 u of the largest
        // output, as for this network in DocSnippetsTest. Its outputs are of order 1 (tanh units
        // times Xavier weights; 2 to 3 for random inputs, and the student tracks such a teacher):
        // 4 bounds them. A wrong or missing adapter would differ by the adaptation itself.
        assertTrue(
                result.reloadDiff() <= 2 * 1024 * U * 4,
                "reloaded adapter: max output difference " + result.reloadDiff());
        assertTrue(Files.isRegularFile(dir.resolve("adapter_model.safetensors")));
        assertTrue(log.toString(StandardCharsets.UTF_8).contains("task B loss"));
    }
}
