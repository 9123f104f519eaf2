package org.peft4j.models.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.U;
import static org.peft4j.core.testing.ArrayAssertions.assertAllClose;
import static org.peft4j.core.testing.ArrayAssertions.assertRoundingClose;
import static org.peft4j.core.testing.ArrayAssertions.floats;
import static org.peft4j.core.testing.ArrayAssertions.maxAbs;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;

/**
 * Each model family's logits against an independent reference: tiny fixed-seed checkpoints and
 * their logits, written by {@code src/test/python/reference_families.py} from the families'
 * published math in float64 PyTorch (see that script for the math and how to rerun it).
 *
 * <p>The tolerance is {@link LlamaRounding#logits}'s: {@code 8 sqrt(n)} unit roundoffs of the
 * largest logit, {@code n} the roundings behind one logit (biases and Qwen3's norms counted). A
 * missing bias, a norm in the wrong place, an unscaled rotary band or a window off by one moves
 * logits by far more (each case's weights are drawn large enough that attention is not uniform).
 */
class ModelFamiliesReferenceTest {

    private NDManager manager;

    @BeforeEach
    void open() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void close() {
        manager.close();
    }

    static Path reference(String name) {
        try {
            return Paths.get(
                            ModelFamiliesReferenceTest.class
                                    .getResource("families/" + name + "/config.json")
                                    .toURI())
                    .getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private static JsonNode expected(Path dir) throws IOException {
        return new ObjectMapper().readTree(dir.resolve("expected.json").toFile());
    }

    /** The rows of a key of {@code expected.json}, one after the other. */
    private static double[] flatten(JsonNode expected, String key) {
        JsonNode rows = expected.get(key);
        int size = rows.get(0).size();
        double[] out = new double[rows.size() * size];
        for (int b = 0; b < rows.size(); b++) {
            for (int i = 0; i < size; i++) {
                out[b * size + i] = rows.get(b).get(i).doubleValue();
            }
        }
        return out;
    }

    private static long[] ids(JsonNode expected) {
        return Arrays.stream(flatten(expected, "ids")).mapToLong(id -> (long) id).toArray();
    }

    private static double[] logits(JsonNode expected) {
        return flatten(expected, "logits");
    }

    private NDArray forward(LlamaForCausalLM model, NDList input) {
        return model.forward(new ParameterStore(manager, false), input, false).head();
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama3", "llama-linear", "mistral", "qwen2", "qwen3"})
    void logitsMatchTheFloat64Reference(String name) throws Exception {
        Path dir = reference(name);
        JsonNode expected = expected(dir);
        LlamaForCausalLM model = LlamaForCausalLM.fromPretrained(dir, manager);
        LlamaConfig config = model.getConfig();
        assertEquals(
                new ObjectMapper()
                        .readTree(dir.resolve("config.json").toFile())
                        .get("model_type")
                        .textValue(),
                config.getModelFamily().getModelType(),
                "the family read from model_type");
        long[] ids = ids(expected);
        int rows = expected.get("ids").size();
        int length = ids.length / rows;
        NDArray out = forward(model, new NDList(manager.create(ids, new Shape(rows, length))));
        double[] reference = logits(expected);
        double c = LlamaRounding.logits(config, length);
        assertAllClose(
                reference,
                floats(out),
                c * U,
                c * U * maxAbs(reference),
                name + ": float32 logits against the float64 reference");
    }

    @Test
    void aCausalFourDimensionalMaskKeepsMistralsWindow() throws Exception {
        Path dir = reference("mistral");
        JsonNode expected = expected(dir);
        LlamaForCausalLM model = LlamaForCausalLM.fromPretrained(dir, manager);
        int length = 12;
        float[] causal = new float[2 * length * length];
        for (int b = 0; b < 2; b++) {
            for (int i = 0; i < length; i++) {
                for (int j = i + 1; j < length; j++) {
                    causal[(b * length + i) * length + j] = -Float.MAX_VALUE;
                }
            }
        }
        NDList input =
                new NDList(
                        manager.create(ids(expected), new Shape(2, length)),
                        manager.arange(0, length, 1, DataType.INT64)
                                .reshape(1, length)
                                .repeat(0, 2),
                        manager.create(causal, new Shape(2, 1, length, length)));
        double[] reference = logits(expected);
        double c = LlamaRounding.logits(model.getConfig(), length);
        assertAllClose(
                reference,
                floats(forward(model, input)),
                c * U,
                c * U * maxAbs(reference),
                "a 4-D mask without the window: the model applies it");
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama3", "mistral", "qwen2", "qwen3"})
    void cachedStepsEqualTheFullPass(String name) throws Exception {
        // step by step through the key/value cache from a 3-token prompt: the Mistral case's
        // steps from position 4 on run past its window of 4
        Path dir = reference(name);
        LlamaForCausalLM model = LlamaForCausalLM.fromPretrained(dir, manager);
        long[] ids = ids(expected(dir));
        int length = 12;
        NDArray full = forward(model, new NDList(manager.create(ids, new Shape(2, length))));
        int prompt = 3;
        NDArray promptIds = manager.create(ids, new Shape(2, length)).get(":, :{}", prompt);
        NDList out =
                model.forward(new ParameterStore(manager, false), new NDList(promptIds), false);
        int layers = model.getNumHiddenLayers();
        double c = LlamaRounding.logits(model.getConfig(), length);
        for (int t = prompt; t < length; t++) {
            NDList step =
                    new NDList(
                            manager.create(ids, new Shape(2, length)).get(":, {}:{}", t, t + 1),
                            manager.create(new long[] {t, t}, new Shape(2, 1)),
                            manager.ones(new Shape(2, t + 1), DataType.INT64));
            step.addAll(out.subNDList(1).subNDList(0, 2 * layers));
            out = model.forward(new ParameterStore(manager, false), step, false);
            assertRoundingClose(
                    full.get(":, {}:{}, :", t, t + 1),
                    out.head(),
                    c,
                    name + ": step " + t + " through the cache against the full pass");
        }
    }

    @Test
    void mistralsWindowChangesTheLogitsFromTheWindowOn(@TempDir Path tmp) throws Exception {
        Path dir = reference("mistral");
        Path unwindowed = tmp.resolve("no-window");
        Files.createDirectories(unwindowed);
        Files.copy(dir.resolve("model.safetensors"), unwindowed.resolve("model.safetensors"));
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = (ObjectNode) json.readTree(dir.resolve("config.json").toFile());
        int window = config.get("sliding_window").intValue();
        config.putNull("sliding_window");
        json.writeValue(unwindowed.resolve("config.json").toFile(), config);

        LlamaForCausalLM windowed = LlamaForCausalLM.fromPretrained(dir, manager);
        LlamaForCausalLM whole = LlamaForCausalLM.fromPretrained(unwindowed, manager);
        assertEquals(window, windowed.getConfig().getSlidingWindow());
        assertEquals(0, whole.getConfig().getSlidingWindow());
        long[] ids = ids(expected(dir));
        int length = 12;
        NDList input = new NDList(manager.create(ids, new Shape(2, length)));
        NDArray a = forward(windowed, input);
        NDArray b = forward(whole, input);
        double c = LlamaRounding.logits(windowed.getConfig(), length);
        // within the window nothing is cut out: the same math
        assertRoundingClose(
                a.get(":, :{}, :", window),
                b.get(":, :{}, :", window),
                c,
                "positions before the window fills");
        // from position `window` on, each position loses keys; every one of them changes
        double tolerance = 2 * c * U * maxAbs(floats(a));
        for (int t = window; t < length; t++) {
            double diff = maxAbs(floats(a.get(":, {}, :", t).sub(b.get(":, {}, :", t))));
            assertTrue(
                    diff > 100 * tolerance,
                    "position "
                            + t
                            + " should differ once the window cuts keys out: "
                            + diff
                            + " vs rounding "
                            + tolerance);
        }
    }
}
