package org.peft4j.models.llama.weights;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.peft4j.core.io.SafetensorsReader;
import org.peft4j.core.io.TensorInfo;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * A Hugging Face checkpoint: {@code model.safetensors}, or the shards that {@code
 * model.safetensors.index.json} maps each tensor to. Every shard's header is validated on open.
 */
final class SafetensorsWeights implements WeightSource {

    static final String SINGLE = "model.safetensors";
    static final String INDEX = "model.safetensors.index.json";

    private final Path dir;
    private final Map<String, SafetensorsReader> byTensor;
    private final List<SafetensorsReader> readers;

    private SafetensorsWeights(
            Path dir, Map<String, SafetensorsReader> byTensor, List<SafetensorsReader> readers) {
        this.dir = dir;
        this.byTensor = byTensor;
        this.readers = readers;
    }

    static SafetensorsWeights open(Path dir) throws IOException {
        Path single = dir.resolve(SINGLE);
        Path index = dir.resolve(INDEX);
        List<SafetensorsReader> readers = new ArrayList<>();
        Map<String, SafetensorsReader> byTensor = new LinkedHashMap<>();
        try {
            if (Files.isRegularFile(index)) {
                openShards(dir, index, readers, byTensor);
            } else if (Files.isRegularFile(single)) {
                SafetensorsReader reader = SafetensorsReader.open(single);
                readers.add(reader);
                reader.getTensors().keySet().forEach(name -> byTensor.put(name, reader));
            } else {
                throw new NoSuchFileException(
                        dir.toString(),
                        null,
                        "holds neither "
                                + SINGLE
                                + " nor "
                                + INDEX
                                + "; it holds "
                                + list(dir)
                                + " (pickled pytorch_model.bin checkpoints are not read:"
                                + " convert them to safetensors)");
            }
        } catch (IOException | RuntimeException e) {
            for (SafetensorsReader reader : readers) {
                reader.close();
            }
            throw e;
        }
        return new SafetensorsWeights(dir, byTensor, readers);
    }

    private static void openShards(
            Path dir,
            Path index,
            List<SafetensorsReader> readers,
            Map<String, SafetensorsReader> byTensor)
            throws IOException {
        JsonNode map = new ObjectMapper().readTree(index.toFile()).get("weight_map");
        if (map == null || !map.isObject()) {
            throw new IOException(index + ": has no \"weight_map\" object");
        }
        Map<String, SafetensorsReader> byFile = new LinkedHashMap<>();
        Iterator<Map.Entry<String, JsonNode>> entries = map.fields();
        while (entries.hasNext()) {
            Map.Entry<String, JsonNode> entry = entries.next();
            String file = entry.getValue().asText();
            SafetensorsReader reader = byFile.get(file);
            if (reader == null) {
                Path shard = dir.resolve(file);
                if (!Files.isRegularFile(shard)) {
                    throw new NoSuchFileException(
                            shard.toString(), null, "a shard named in " + index + " is missing");
                }
                reader = SafetensorsReader.open(shard);
                readers.add(reader);
                byFile.put(file, reader);
            }
            if (!reader.getTensors().containsKey(entry.getKey())) {
                throw new IOException(
                        index
                                + " maps "
                                + entry.getKey()
                                + " to "
                                + file
                                + ", which does not hold it");
            }
            byTensor.put(entry.getKey(), reader);
        }
    }

    private static List<String> list(Path dir) throws IOException {
        List<String> names = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            files.forEach(p -> names.add(p.getFileName().toString()));
        }
        Collections.sort(names);
        return names;
    }

    @Override
    public String describe() {
        return dir.toString();
    }

    @Override
    public Set<String> names() {
        return byTensor.keySet();
    }

    @Override
    public Shape shape(String name) {
        return info(name).shape();
    }

    private TensorInfo info(String name) {
        return byTensor.get(name).getTensors().get(name);
    }

    @Override
    public NDArray load(String name, NDManager manager) throws IOException {
        SafetensorsReader reader = byTensor.get(name);
        NDArray array = reader.read(name, manager);
        if (array.getDataType() != DataType.FLOAT32) {
            NDArray widened = array.toType(DataType.FLOAT32, false);
            array.close();
            array = widened;
        }
        return array;
    }

    @Override
    public void close() throws IOException {
        for (SafetensorsReader reader : readers) {
            reader.close();
        }
    }
}
