package org.peft4j.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;

class SafetensorsTest {

    private static NDManager manager;

    @TempDir Path dir;

    @BeforeAll
    static void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    /** Builds a safetensors file byte by byte, independently of the writer. */
    private static byte[] file(String header, byte[] data, long declaredLength) {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buf =
                ByteBuffer.allocate(8 + json.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(declaredLength).put(json).put(data);
        return buf.array();
    }

    private static byte[] file(String header, byte[] data) {
        return file(header, data, header.getBytes(StandardCharsets.UTF_8).length);
    }

    private static byte[] le(float... values) {
        ByteBuffer buf = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            buf.putFloat(v);
        }
        return buf.array();
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] part : parts) {
            out.writeBytes(part);
        }
        return out.toByteArray();
    }

    private Path write(String name, byte[] bytes) throws IOException {
        Path path = dir.resolve(name);
        Files.write(path, bytes);
        return path;
    }

    @Test
    void readsHandWrittenF32AndI64WithMetadata() throws IOException {
        ByteBuffer longs = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        longs.putLong(7).putLong(-3).putLong(1L << 40);
        String header =
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                        + "\"b\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[16,40]},"
                        + "\"__metadata__\":{\"format\":\"pt\"}}";
        Path path =
                write("a.safetensors", file(header, concat(le(1f, -2f, 3.5f, 4f), longs.array())));
        try (SafetensorsReader reader = SafetensorsReader.open(path);
                NDManager m = manager.newSubManager()) {
            assertEquals(Map.of("format", "pt"), reader.getMetadata());
            NDArray a = reader.read("a", m);
            assertEquals(new Shape(2, 2), a.getShape());
            assertEquals(DataType.FLOAT32, a.getDataType());
            assertSameBits(
                    new float[] {1f, -2f, 3.5f, 4f},
                    a.toFloatArray(),
                    "F32 is read as the file's little-endian bytes");
            assertEquals("a", a.getName());
            NDArray b = reader.read("b", m);
            assertEquals(DataType.INT64, b.getDataType());
            assertArrayEquals(new long[] {7, -3, 1L << 40}, b.toLongArray());
        }
    }

    @Test
    void widensBf16ToF32InJava() throws IOException {
        float[] values = {1.5f, -2.25f, 3.140625f, 1e-3f, -65504f, 0f};
        ByteBuffer halves = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        float[] expected = new float[values.length];
        for (int i = 0; i < values.length; i++) {
            int bits = Float.floatToRawIntBits(values[i]);
            halves.putShort((short) (bits >>> 16));
            expected[i] = Float.intBitsToFloat(bits >>> 16 << 16); // truncation, as stored
        }
        String header = "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]}}";
        Path path = write("bf16.safetensors", file(header, halves.array()));
        try (SafetensorsReader reader = SafetensorsReader.open(path);
                NDManager m = manager.newSubManager()) {
            NDArray w = reader.read("w", m);
            assertEquals(DataType.FLOAT32, w.getDataType());
            assertEquals(new Shape(2, 3), w.getShape());
            assertSameBits(
                    expected,
                    w.toFloatArray(),
                    "BF16 widens exactly: its bits become a float's upper half");
            assertEquals(1.5f, expected[0]);
        }
    }

    @Test
    void readsF16() throws IOException {
        ByteBuffer halves = ByteBuffer.allocate(6).order(ByteOrder.LITTLE_ENDIAN);
        halves.putShort((short) 0x3C00).putShort((short) 0xC000).putShort((short) 0x3800);
        String header = "{\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]}}";
        Path path = write("f16.safetensors", file(header, halves.array()));
        try (SafetensorsReader reader = SafetensorsReader.open(path);
                NDManager m = manager.newSubManager()) {
            NDArray h = reader.read("h", m);
            assertEquals(DataType.FLOAT16, h.getDataType());
            assertSameBits(
                    new float[] {1f, -2f, 0.5f},
                    h.toType(DataType.FLOAT32, false).toFloatArray(),
                    "F16 values are read as stored, and every half converts to float exactly");
        }
    }

    @Test
    void writerProducesTheSpecifiedLayout() throws IOException {
        Path path = dir.resolve("out.safetensors");
        try (NDManager m = manager.newSubManager()) {
            Map<String, NDArray> tensors = new LinkedHashMap<>();
            tensors.put("x", m.create(new float[] {1, 2, 3, 4, 5, 6}, new Shape(2, 3)));
            tensors.put("i", m.create(new int[] {-1, 2}));
            tensors.put("l", m.create(new long[] {5L}));
            tensors.put("h", m.create(new float[] {0.5f, -1f}).toType(DataType.FLOAT16, false));
            SafetensorsWriter.write(path, tensors);
        }
        byte[] bytes = Files.readAllBytes(path);
        ByteBuffer buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        long headerLength = buf.getLong(0);
        assertEquals(0, headerLength % 8, "header padded to 8 bytes");
        JsonNode header =
                new ObjectMapper()
                        .readTree(new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8));
        assertEquals("pt", header.get("__metadata__").get("format").asText());
        assertEquals("F32", header.get("x").get("dtype").asText());
        assertEquals("[2,3]", header.get("x").get("shape").toString());
        assertEquals("[0,24]", header.get("x").get("data_offsets").toString());
        assertEquals("I32", header.get("i").get("dtype").asText());
        assertEquals("[24,32]", header.get("i").get("data_offsets").toString());
        assertEquals("I64", header.get("l").get("dtype").asText());
        assertEquals("[32,40]", header.get("l").get("data_offsets").toString());
        assertEquals("F16", header.get("h").get("dtype").asText());
        assertEquals("[40,44]", header.get("h").get("data_offsets").toString());
        int data = 8 + (int) headerLength;
        assertEquals(data + 44, bytes.length);
        assertEquals(3f, buf.getFloat(data + 8));
        assertEquals(-1, buf.getInt(data + 24));
        assertEquals(5L, buf.getLong(data + 32));
        assertEquals((short) 0x3800, buf.getShort(data + 40));
        try (SafetensorsReader reader = SafetensorsReader.open(path);
                NDManager m = manager.newSubManager()) {
            NDList all = reader.readAll(m);
            assertEquals(4, all.size());
            assertSameBits(
                    new float[] {1, 2, 3, 4, 5, 6},
                    all.get(0).toFloatArray(),
                    "written and read back: the tensor's bytes, unchanged");
            assertArrayEquals(new int[] {-1, 2}, all.get(1).toIntArray());
        }
    }

    private void assertRejected(String name, byte[] bytes, String... fragments) throws IOException {
        Path path = write(name, bytes);
        SafetensorsFormatException e =
                assertThrows(SafetensorsFormatException.class, () -> SafetensorsReader.open(path));
        assertTrue(e.getMessage().contains(path.toString()), e.getMessage());
        for (String fragment : fragments) {
            assertTrue(e.getMessage().contains(fragment), e.getMessage());
        }
    }

    @Test
    void rejectsTruncatedAndMalformedFiles() throws IOException {
        String ok = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        assertRejected("short.safetensors", new byte[] {1, 2, 3}, "truncated");
        assertRejected("huge.safetensors", file(ok, le(1, 2), 1L << 40), "header length");
        assertRejected("past.safetensors", file(ok, le(1, 2), 5000), "truncated");
        assertRejected("cut.safetensors", file(ok, le(1)), "\"w\"", "truncated");
        assertRejected("json.safetensors", file("{\"w\": [", new byte[0]), "not valid JSON");
        assertRejected(
                "dtype.safetensors",
                file(
                        "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}",
                        new byte[2]),
                "F8_E4M3");
        assertRejected(
                "size.safetensors",
                file("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", le(1, 2)),
                "needs 12 bytes");
        assertRejected(
                "overlap.safetensors",
                file(
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                        le(1, 2)),
                "overlap");
        assertRejected(
                "negative.safetensors",
                file("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", le(1, 2)),
                "dimension");
    }

    @Test
    void refusesToWriteBfloat16Names() {
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> TensorDType.forWriting(DataType.BFLOAT16));
        assertTrue(e.getMessage().contains("bfloat16"), e.getMessage());
    }

    @Test
    void failedWriteLeavesTheOldFileAndNoTemporaryFile() throws IOException {
        Path target = dir.resolve("config.json");
        AtomicFiles.writeString(target, "good");
        assertThrows(
                IOException.class,
                () ->
                        AtomicFiles.write(
                                target,
                                channel -> {
                                    channel.write(ByteBuffer.wrap("half".getBytes()));
                                    throw new IOException("disk full");
                                }));
        assertEquals("good", Files.readString(target));
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(1, files.count(), "no temporary file left behind");
        }
    }
}
