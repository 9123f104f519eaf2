package org.peft4j.core.io;

import ai.djl.ndarray.NDArray;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes named arrays as one safetensors file, atomically (see {@link AtomicFiles}).
 *
 * <p>The header is padded with spaces to a multiple of 8 bytes, as the reference implementation
 * does, so that the data of every tensor starts aligned.
 */
public final class SafetensorsWriter {

    private static final ObjectMapper JSON = new ObjectMapper();

    private SafetensorsWriter() {}

    /**
     * Writes the arrays in the map's order.
     *
     * @param file the file to create or replace
     * @param tensors arrays by key; float32, float16, float64, int64, int32, int8, uint8 or boolean
     * @param metadata the header's {@code __metadata__} strings; may be empty
     * @throws IOException if writing fails; the file is then unchanged
     * @throws IllegalArgumentException if an array's type cannot be written
     */
    public static void write(Path file, Map<String, NDArray> tensors, Map<String, String> metadata)
            throws IOException {
        ObjectNode header = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = header.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        List<NDArray> ordered = new ArrayList<>(tensors.size());
        long offset = 0;
        for (Map.Entry<String, NDArray> entry : tensors.entrySet()) {
            NDArray array = entry.getValue();
            TensorDType dtype;
            try {
                dtype = TensorDType.forWriting(array.getDataType());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(
                        "tensor \"" + entry.getKey() + "\": " + e.getMessage(), e);
            }
            long length = array.size() * dtype.byteSize();
            ObjectNode node = header.putObject(entry.getKey());
            node.put("dtype", dtype.code());
            ArrayNode shape = node.putArray("shape");
            for (long dim : array.getShape().getShape()) {
                shape.add(dim);
            }
            node.putArray("data_offsets").add(offset).add(offset + length);
            offset += length;
            ordered.add(array);
        }
        byte[] json = JSON.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer prefix = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        prefix.putLong(padded).put(json);
        while (prefix.hasRemaining()) {
            prefix.put((byte) ' ');
        }
        prefix.flip();
        AtomicFiles.write(
                file,
                channel -> {
                    writeFully(channel, prefix);
                    for (NDArray array : ordered) {
                        writeFully(channel, NativeArrays.bytesOf(array));
                    }
                });
    }

    /**
     * Writes the arrays with the metadata {@code {"format": "pt"}} that Hugging Face tools expect.
     *
     * @param file the file to create or replace
     * @param tensors arrays by key
     * @throws IOException if writing fails; the file is then unchanged
     */
    public static void write(Path file, Map<String, NDArray> tensors) throws IOException {
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put("format", "pt");
        write(file, tensors, metadata);
    }

    private static void writeFully(java.nio.channels.FileChannel channel, ByteBuffer buffer)
            throws IOException {
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }
}
