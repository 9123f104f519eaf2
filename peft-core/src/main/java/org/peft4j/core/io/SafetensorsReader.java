package org.peft4j.core.io;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.ShortBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads tensors from a safetensors file one at a time, so that a model loads without two copies of
 * its weights in memory.
 *
 * <p>{@link #open(Path)} reads and validates the whole header against the file: the header length
 * against the file size (and a 100 MB cap, as in the reference implementation), every dtype, every
 * shape against its byte range, every byte range against the data section, and no two ranges
 * overlapping. A file that passes is safe to read tensor by tensor.
 *
 * <p>bfloat16 tensors are widened to float32 in Java ({@code bits << 16}); the engine never sees a
 * bfloat16 array.
 */
public final class SafetensorsReader implements AutoCloseable {

    /** The largest header accepted, as in the reference implementation. */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int CHUNK_BYTES = 1 << 20;

    private final Path file;
    private final FileChannel channel;
    private final long dataStart;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;

    private SafetensorsReader(
            Path file,
            FileChannel channel,
            long dataStart,
            Map<String, TensorInfo> tensors,
            Map<String, String> metadata) {
        this.file = file;
        this.channel = channel;
        this.dataStart = dataStart;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /**
     * Opens a file and validates its header.
     *
     * @param file a safetensors file
     * @return a reader that must be closed
     * @throws NoSuchFileException if the file does not exist
     * @throws SafetensorsFormatException if the file is truncated or its header is malformed
     * @throws IOException if the file cannot be read
     */
    public static SafetensorsReader open(Path file) throws IOException {
        FileChannel channel = FileChannel.open(file, StandardOpenOption.READ);
        try {
            return parse(file, channel);
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    private static SafetensorsReader parse(Path file, FileChannel channel) throws IOException {
        long size = channel.size();
        if (size < 8) {
            throw new SafetensorsFormatException(
                    file,
                    "file is "
                            + size
                            + " bytes long, shorter than the 8-byte header length; the file is"
                            + " truncated or not a safetensors file");
        }
        ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(channel, lengthBytes, 0);
        long headerLength = lengthBytes.getLong(0);
        if (headerLength < 2 || headerLength > MAX_HEADER_BYTES) {
            throw new SafetensorsFormatException(
                    file,
                    "header length "
                            + Long.toUnsignedString(headerLength)
                            + " is outside [2, "
                            + MAX_HEADER_BYTES
                            + "]; the file is corrupt or not a safetensors file");
        }
        if (headerLength > size - 8) {
            throw new SafetensorsFormatException(
                    file,
                    "header length "
                            + headerLength
                            + " exceeds the "
                            + (size - 8)
                            + " bytes that follow it; the file is truncated");
        }
        ByteBuffer headerBytes = ByteBuffer.allocate((int) headerLength);
        readFully(channel, headerBytes, 8);
        JsonNode header;
        try {
            header = JSON.readTree(new String(headerBytes.array(), StandardCharsets.UTF_8));
        } catch (JsonProcessingException e) {
            throw new SafetensorsFormatException(
                    file, "header is not valid JSON: " + e.getOriginalMessage());
        }
        if (header == null || !header.isObject()) {
            throw new SafetensorsFormatException(file, "header is not a JSON object");
        }
        long dataStart = 8 + headerLength;
        long dataLength = size - dataStart;
        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        Iterator<Map.Entry<String, JsonNode>> fields = header.fields();
        while (fields.hasNext()) {
            Map.Entry<String, JsonNode> field = fields.next();
            if ("__metadata__".equals(field.getKey())) {
                readMetadata(file, field.getValue(), metadata);
            } else {
                TensorInfo info = readEntry(file, field.getKey(), field.getValue(), dataLength);
                tensors.put(info.name(), info);
            }
        }
        checkNoOverlap(file, tensors);
        return new SafetensorsReader(
                file,
                channel,
                dataStart,
                Collections.unmodifiableMap(tensors),
                Collections.unmodifiableMap(metadata));
    }

    private static void readMetadata(Path file, JsonNode node, Map<String, String> metadata)
            throws SafetensorsFormatException {
        if (!node.isObject()) {
            throw new SafetensorsFormatException(file, "\"__metadata__\" is not a JSON object");
        }
        Iterator<Map.Entry<String, JsonNode>> entries = node.fields();
        while (entries.hasNext()) {
            Map.Entry<String, JsonNode> entry = entries.next();
            if (!entry.getValue().isTextual()) {
                throw new SafetensorsFormatException(
                        file, "metadata value of \"" + entry.getKey() + "\" is not a string");
            }
            metadata.put(entry.getKey(), entry.getValue().asText());
        }
    }

    private static TensorInfo readEntry(Path file, String name, JsonNode node, long dataLength)
            throws SafetensorsFormatException {
        String where = "tensor \"" + name + "\": ";
        if (!node.isObject()) {
            throw new SafetensorsFormatException(file, where + "entry is not a JSON object");
        }
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw new SafetensorsFormatException(file, where + "\"dtype\" is missing");
        }
        TensorDType dtype = TensorDType.fromCode(dtypeNode.asText());
        if (dtype == null) {
            throw new SafetensorsFormatException(
                    file,
                    where
                            + "dtype "
                            + dtypeNode.asText()
                            + " is not supported; supported are F32, F16, BF16, F64, I64, I32, I8,"
                            + " U8, U16 and BOOL");
        }
        JsonNode shapeNode = node.get("shape");
        if (shapeNode == null || !shapeNode.isArray()) {
            throw new SafetensorsFormatException(file, where + "\"shape\" is missing");
        }
        long[] dims = new long[shapeNode.size()];
        long elements = 1;
        for (int i = 0; i < dims.length; i++) {
            JsonNode dim = shapeNode.get(i);
            if (!dim.canConvertToLong() || !dim.isIntegralNumber() || dim.asLong() < 0) {
                throw new SafetensorsFormatException(
                        file, where + "shape " + shapeNode + " holds a dimension that is not >= 0");
            }
            dims[i] = dim.asLong();
            elements = Math.multiplyExact(elements, dims[i]);
        }
        JsonNode offsets = node.get("data_offsets");
        if (offsets == null
                || !offsets.isArray()
                || offsets.size() != 2
                || !offsets.get(0).isIntegralNumber()
                || !offsets.get(1).isIntegralNumber()) {
            throw new SafetensorsFormatException(
                    file, where + "\"data_offsets\" is not a pair of integers");
        }
        long begin = offsets.get(0).asLong();
        long end = offsets.get(1).asLong();
        if (begin < 0 || end < begin || end > dataLength) {
            throw new SafetensorsFormatException(
                    file,
                    where
                            + "data_offsets ["
                            + begin
                            + ", "
                            + end
                            + "] lie outside the "
                            + dataLength
                            + "-byte data section; the file is truncated or corrupt");
        }
        long expected = elements * dtype.byteSize();
        if (end - begin != expected) {
            throw new SafetensorsFormatException(
                    file,
                    where
                            + "shape "
                            + new Shape(dims)
                            + " of "
                            + dtype.code()
                            + " needs "
                            + expected
                            + " bytes but data_offsets span "
                            + (end - begin));
        }
        return new TensorInfo(name, dtype, new Shape(dims), begin, end);
    }

    private static void checkNoOverlap(Path file, Map<String, TensorInfo> tensors)
            throws SafetensorsFormatException {
        List<TensorInfo> sorted = new ArrayList<>(tensors.values());
        sorted.sort(Comparator.comparingLong(TensorInfo::begin));
        for (int i = 1; i < sorted.size(); i++) {
            TensorInfo previous = sorted.get(i - 1);
            TensorInfo current = sorted.get(i);
            if (current.begin() < previous.end()) {
                throw new SafetensorsFormatException(
                        file,
                        "tensors \""
                                + previous.name()
                                + "\" and \""
                                + current.name()
                                + "\" overlap in the data section");
            }
        }
    }

    /**
     * Returns the file this reader reads.
     *
     * @return the path given to {@link #open(Path)}
     */
    public Path getFile() {
        return file;
    }

    /**
     * Returns the header entries in file order.
     *
     * @return an unmodifiable map from tensor name to its entry
     */
    public Map<String, TensorInfo> getTensors() {
        return tensors;
    }

    /**
     * Returns the {@code __metadata__} map of the header.
     *
     * @return an unmodifiable map, empty when the header has none
     */
    public Map<String, String> getMetadata() {
        return metadata;
    }

    /**
     * Reads one tensor into a new array.
     *
     * @param name the tensor's key
     * @param manager the manager that owns the returned array
     * @return an array of the tensor's shape and of type {@link TensorDType#arrayType()}, named
     *     {@code name}
     * @throws IllegalArgumentException if the file holds no tensor of that name
     * @throws IOException if the data cannot be read
     */
    public NDArray read(String name, NDManager manager) throws IOException {
        TensorInfo info = tensors.get(name);
        if (info == null) {
            throw new IllegalArgumentException(
                    file + ": holds no tensor \"" + name + "\"; it holds " + tensors.keySet());
        }
        long position = dataStart + info.begin();
        NDArray array;
        if (info.dtype() == TensorDType.BF16 || info.dtype() == TensorDType.U16) {
            // bfloat16's bits are float32's upper half; uint16 widens to int32 as it is
            int shift = info.dtype() == TensorDType.BF16 ? 16 : 0;
            array =
                    NativeArrays.create(
                            manager,
                            info.shape(),
                            info.dtype().arrayType(),
                            target -> readWidened(position, info.byteLength(), shift, target));
        } else {
            array =
                    NativeArrays.create(
                            manager,
                            info.shape(),
                            info.dtype().arrayType(),
                            target -> readFully(channel, target, position));
        }
        array.setName(name);
        return array;
    }

    /**
     * Reads every tensor, in file order.
     *
     * @param manager the manager that owns the returned arrays
     * @return the arrays, each named by its key
     * @throws IOException if the data cannot be read
     */
    public NDList readAll(NDManager manager) throws IOException {
        NDList list = new NDList(tensors.size());
        for (String name : tensors.keySet()) {
            list.add(read(name, manager));
        }
        return list;
    }

    private void readWidened(long position, long length, int shift, ByteBuffer target)
            throws IOException {
        ByteBuffer chunk = ByteBuffer.allocate(CHUNK_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        long done = 0;
        while (done < length) {
            int n = (int) Math.min(CHUNK_BYTES, length - done);
            chunk.clear().limit(n);
            readFully(channel, chunk, position + done);
            chunk.flip();
            ShortBuffer halves = chunk.asShortBuffer();
            while (halves.hasRemaining()) {
                target.putInt((halves.get() & 0xFFFF) << shift);
            }
            done += n;
        }
    }

    private static void readFully(FileChannel channel, ByteBuffer target, long position)
            throws IOException {
        long at = position;
        while (target.hasRemaining()) {
            int n = channel.read(target, at);
            if (n < 0) {
                throw new IOException("unexpected end of file at byte " + at);
            }
            at += n;
        }
    }

    /** {@inheritDoc} */
    @Override
    public void close() throws IOException {
        channel.close();
    }
}
