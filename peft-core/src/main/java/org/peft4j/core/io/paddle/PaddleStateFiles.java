package org.peft4j.core.io.paddle;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.peft4j.core.PeftModel;
import org.peft4j.core.io.NativeArrays;
import org.peft4j.core.io.SafetensorsReader;
import org.peft4j.core.io.TensorDType;
import org.peft4j.core.io.TensorInfo;
import org.peft4j.core.parallel.ShardedCheckpoint;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.ToIntFunction;

/**
 * The files PaddleNLP saves a state dict to, read into arrays under Paddle's own names and in
 * Paddle's layout (a {@code Linear} weight is {@code [in, out]}): {@code paddle.save}'s {@code
 * .pdparams} pickles (see {@link PickleStateReader}), their tensor-parallel variants {@code
 * NAME.tpRR.pdparams}, and the unified checkpoint's safetensors ({@code safetensors.numpy}'s
 * files, with {@code NAME.safetensors.index.json} mapping each key to its file).
 *
 * <p>bfloat16 is stored as {@code uint16} in both (numpy has no bfloat16) and is read as float32
 * ({@code bits << 16}); no bfloat16 array is created.
 */
public final class PaddleStateFiles {

    private static final ObjectMapper JSON = new ObjectMapper();

    private PaddleStateFiles() {}

    /**
     * Names the file of one rank, as PaddleNLP's {@code _add_variant(name, "tpRR")} does.
     *
     * @param file the merged file's name, such as {@code lora_model_state.pdparams}
     * @param rank the rank, from 0
     * @return for example {@code lora_model_state.tp01.pdparams}
     */
    public static String shardName(String file, int rank) {
        int dot = file.lastIndexOf('.');
        return file.substring(0, dot) + String.format(".tp%02d", rank) + file.substring(dot);
    }

    /**
     * Returns how many rank files of a name a directory holds, counting {@code tp00}, {@code tp01},
     * ... up to the first one missing.
     *
     * @param dir the directory
     * @param file the merged file's name
     * @return 0 when there is no {@code tp00} file
     */
    public static int countShards(Path dir, String file) {
        int n = 0;
        while (Files.isRegularFile(dir.resolve(shardName(file, n)))) {
            n++;
        }
        return n;
    }

    /**
     * Returns whether a directory holds Hugging Face weights ({@code adapter_model.safetensors}
     * or its rank files), which are read rather than PaddleNLP's when both are there.
     *
     * @param dir an adapter directory
     * @return true when it does, or is no directory
     * @throws IOException if the directory cannot be listed
     */
    public static boolean holdsHuggingFaceWeights(Path dir) throws IOException {
        return !Files.isDirectory(dir)
                || Files.isRegularFile(dir.resolve(PeftModel.WEIGHTS_FILE))
                || !ShardedCheckpoint.shardDegrees(dir, PeftModel.WEIGHTS_FILE).isEmpty();
    }

    /**
     * Reads a state saved whole ({@code file}) or by ranks ({@code NAME.tpRR.EXT}, preferred, as
     * PaddleNLP's {@code from_pretrained} prefers them when the config's degree is above 1).
     *
     * @param dir the directory
     * @param file the merged file's name
     * @param degree the config's {@code tensor_parallel_degree}: above 1, that many rank files
     *     must be there; otherwise the rank files present are read when there is no merged file
     * @param axisOf the axis each key is split along across ranks, -1 for whole
     * @param manager the manager that owns the arrays
     * @return the whole state by Paddle name
     * @throws NoSuchFileException if neither is there, or a rank's file is missing; the message
     *     lists what the directory holds
     * @throws IOException if a file cannot be read
     */
    public static Map<String, NDArray> readWholeOrRanks(
            Path dir, String file, int degree, ToIntFunction<String> axisOf, NDManager manager)
            throws IOException {
        int present = countShards(dir, file);
        Path merged = dir.resolve(file);
        if (present == 0 || degree <= 1 && Files.isRegularFile(merged)) {
            if (!Files.isRegularFile(merged)) {
                throw new NoSuchFileException(
                        merged.toString(), null, "missing; the directory holds " + list(dir));
            }
            return read(merged, manager);
        }
        return readRanks(dir, file, degree > 1 ? degree : present, axisOf, manager);
    }

    /**
     * Reads one state file.
     *
     * @param file a {@code .pdparams} or {@code .safetensors} file
     * @param manager the manager that owns the arrays
     * @return the arrays by Paddle name, in file order; float32, float16 or float64
     * @throws IOException if the file is missing, truncated, malformed or refused; the message
     *     names it
     */
    public static Map<String, NDArray> read(Path file, NDManager manager) throws IOException {
        Map<String, NDArray> out = new LinkedHashMap<>();
        try {
            if (file.getFileName().toString().endsWith(".safetensors")) {
                readSafetensors(file, manager, out);
            } else {
                for (Map.Entry<String, NumpyArray> e : PickleStateReader.read(file).entrySet()) {
                    out.put(e.getKey(), convert(file, e.getKey(), e.getValue(), manager));
                }
            }
        } catch (IOException | RuntimeException e) {
            out.values().forEach(NDArray::close);
            throw e;
        }
        return out;
    }

    /**
     * Reads the unified checkpoint's safetensors: the files its index names, else the single file.
     *
     * @param dir the directory
     * @param file the single file's name, such as {@code peft_model.safetensors}; the index is
     *     {@code file + ".index.json"}
     * @param manager the manager that owns the arrays
     * @return the arrays by Paddle name
     * @throws NoSuchFileException if neither the index nor the file, or a file the index names, is
     *     there
     * @throws IOException if a file cannot be read; the message names it
     */
    public static Map<String, NDArray> readSafetensorsSet(Path dir, String file, NDManager manager)
            throws IOException {
        Path index = dir.resolve(file + ".index.json");
        if (!Files.isRegularFile(index)) {
            return read(dir.resolve(file), manager);
        }
        JsonNode map = JSON.readTree(index.toFile()).get("weight_map");
        if (map == null || !map.isObject()) {
            throw new IOException(index + ": has no \"weight_map\" object (key -> file)");
        }
        Set<String> files = new LinkedHashSet<>();
        for (Iterator<JsonNode> it = map.elements(); it.hasNext(); ) {
            files.add(it.next().asText());
        }
        Map<String, NDArray> out = new LinkedHashMap<>();
        try {
            for (String name : files) {
                Path part = dir.resolve(name);
                if (!part.normalize().startsWith(dir.normalize())) {
                    throw new IOException(index + ": names a file outside its directory: " + name);
                }
                if (!Files.isRegularFile(part)) {
                    throw new NoSuchFileException(
                            part.toString(), null, "missing; " + index + " lists it");
                }
                out.putAll(read(part, manager));
            }
        } catch (IOException | RuntimeException e) {
            out.values().forEach(NDArray::close);
            throw e;
        }
        return out;
    }

    /**
     * Reads the state a file's rank files hold and joins it as PaddleNLP's merge ({@code
     * split_or_merge_func(is_split=False)}) does: a split tensor's parts concatenated along its
     * axis in rank order, a whole one taken from rank 0.
     *
     * @param dir the directory
     * @param file the merged file's name; the ranks' are {@link #shardName}
     * @param ranks how many rank files there are
     * @param axisOf the axis a key is split along, -1 for a key every rank holds whole
     * @param manager the manager that owns the arrays
     * @return the whole state, in rank 0's order
     * @throws NoSuchFileException if a rank's file is missing
     * @throws IOException if a file cannot be read
     * @throws IllegalArgumentException if the rank files hold different keys or shapes
     */
    public static Map<String, NDArray> readRanks(
            Path dir, String file, int ranks, ToIntFunction<String> axisOf, NDManager manager)
            throws IOException {
        List<Map<String, NDArray>> shards = new ArrayList<>();
        for (int rank = 0; rank < ranks; rank++) {
            Path shard = dir.resolve(shardName(file, rank));
            if (!Files.isRegularFile(shard)) {
                throw new NoSuchFileException(
                        shard.toString(),
                        null,
                        "missing: the adapter was saved by "
                                + ranks
                                + " ranks (tensor_parallel_degree in its config), one file each;"
                                + " copy every rank's file");
            }
            shards.add(read(shard, manager));
        }
        Map<String, NDArray> first = shards.get(0);
        Map<String, NDArray> out = new LinkedHashMap<>();
        for (Map.Entry<String, NDArray> e : first.entrySet()) {
            String key = e.getKey();
            List<NDArray> parts = new ArrayList<>();
            for (int rank = 0; rank < ranks; rank++) {
                NDArray part = shards.get(rank).get(key);
                if (part == null || !part.getShape().equals(e.getValue().getShape())) {
                    throw new IllegalArgumentException(
                            dir.resolve(shardName(file, rank))
                                    + ": key "
                                    + key
                                    + (part == null
                                            ? " is missing"
                                            : " has shape " + part.getShape())
                                    + " where rank 0's file has "
                                    + e.getValue().getShape()
                                    + "; the rank files are of different saves");
                }
                parts.add(part);
            }
            int axis = axisOf.applyAsInt(key);
            out.put(key, axis < 0 ? e.getValue() : NDArrays.concat(new NDList(parts), axis));
        }
        for (int rank = 1; rank < ranks; rank++) {
            Set<String> extra = new LinkedHashSet<>(shards.get(rank).keySet());
            extra.removeAll(first.keySet());
            if (!extra.isEmpty()) {
                throw new IllegalArgumentException(
                        dir.resolve(shardName(file, rank))
                                + ": keys "
                                + extra
                                + " are not in rank 0's file; the rank files are of different"
                                + " saves");
            }
        }
        return out;
    }

    private static void readSafetensors(Path file, NDManager manager, Map<String, NDArray> out)
            throws IOException {
        try (SafetensorsReader reader = SafetensorsReader.open(file)) {
            for (Map.Entry<String, TensorInfo> e : reader.getTensors().entrySet()) {
                NDArray array = reader.read(e.getKey(), manager);
                if (e.getValue().dtype() == TensorDType.U16) {
                    NDArray widened = bf16Bits(array);
                    array.close();
                    array = widened;
                }
                out.put(e.getKey(), array);
            }
        }
    }

    /** Turns int32 arrays holding bfloat16 bits into float32. */
    private static NDArray bf16Bits(NDArray bits) throws IOException {
        int[] values = bits.toIntArray();
        return NativeArrays.create(
                bits.getManager(),
                bits.getShape(),
                DataType.FLOAT32,
                target -> {
                    for (int v : values) {
                        target.putInt(v << 16);
                    }
                });
    }

    private static NDArray convert(Path file, String key, NumpyArray array, NDManager manager)
            throws IOException {
        try {
            return array.toNDArray(manager);
        } catch (IllegalArgumentException e) {
            throw new PickleFormatException(file, "entry " + key + ": " + e.getMessage());
        }
    }

    private static List<String> list(Path dir) throws IOException {
        List<String> names = new ArrayList<>();
        try (java.util.stream.Stream<Path> files = Files.list(dir)) {
            files.forEach(p -> names.add(p.getFileName().toString()));
        }
        names.sort(null);
        return names;
    }
}
