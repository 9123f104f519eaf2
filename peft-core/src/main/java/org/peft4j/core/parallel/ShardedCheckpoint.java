package org.peft4j.core.parallel;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import org.peft4j.core.io.AtomicDirectory;
import org.peft4j.core.io.SafetensorsReader;
import org.peft4j.core.io.SafetensorsWriter;
import org.peft4j.core.io.TensorInfo;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Adapter weights of a possibly tensor-parallel model, saved and loaded in one of two layouts:
 *
 * <ul>
 *   <li><b>merged</b>: one file, {@code adapter_model.safetensors}, identical to a single-process
 *       model's: sharded tensors are gathered and rank 0 writes them;
 *   <li><b>sharded</b>: one file per rank, {@code adapter_model.tp01-of-02.safetensors} for rank 1
 *       of 2, holding that rank's parts under the usual keys.
 * </ul>
 *
 * <p>A merged file loads into any model: each rank cuts out its part. A sharded set loads only into
 * a model of the same degree. Every key and shape is checked before anything is returned, so a
 * failed load leaves the model untouched.
 *
 * <p>{@link #save} writes into a directory; {@link #replaceDirectory} around the saves of one
 * adapter makes them all or nothing for the directory, on every rank.
 */
public final class ShardedCheckpoint {

    private static final Pattern SHARD = Pattern.compile("\\.tp(\\d+)-of-(\\d+)$");
    private static final int MAX_LISTED = 8;

    private ShardedCheckpoint() {}

    /** Writes what belongs beside the weights (a config), once, on rank 0. */
    @FunctionalInterface
    public interface Companion {

        /**
         * Writes the files.
         *
         * @throws IOException if writing fails
         */
        void write() throws IOException;
    }

    /**
     * Returns the file name of one rank's shard.
     *
     * @param file the merged file's name, such as {@code adapter_model.safetensors}
     * @param rank the rank
     * @param degree the tensor-parallel degree
     * @return for example {@code adapter_model.tp01-of-02.safetensors}
     */
    public static String shardName(String file, int rank, int degree) {
        String[] parts = stemAndExtension(file);
        return String.format("%s.tp%02d-of-%02d%s", parts[0], rank, degree, parts[1]);
    }

    private static String[] stemAndExtension(String file) {
        int dot = file.lastIndexOf('.');
        return dot < 0
                ? new String[] {file, ""}
                : new String[] {file.substring(0, dot), file.substring(dot)};
    }

    /**
     * Lists the degrees of the shard sets of a file in a directory.
     *
     * @param dir the directory
     * @param file the merged file's name
     * @return the degrees found, empty when there are no shard files
     * @throws IOException if the directory cannot be listed
     */
    public static SortedSet<Integer> shardDegrees(Path dir, String file) throws IOException {
        String stem = stemAndExtension(file)[0];
        String extension = stemAndExtension(file)[1];
        SortedSet<Integer> degrees = new TreeSet<>();
        try (Stream<Path> files = Files.list(dir)) {
            files.map(p -> p.getFileName().toString())
                    .filter(n -> n.startsWith(stem) && n.endsWith(extension))
                    .map(n -> n.substring(stem.length(), n.length() - extension.length()))
                    .map(SHARD::matcher)
                    .filter(Matcher::matches)
                    .forEach(m -> degrees.add(Integer.parseInt(m.group(2))));
        }
        return degrees;
    }

    /**
     * Replaces a directory as a whole with what {@code contents} writes ({@link AtomicDirectory}),
     * on one process or as a collective of the tensor-parallel group the shardings belong to:
     * every rank of the group calls it; rank 0 stages, commits and swaps, the others write their
     * shards into the same staging directory between barriers.
     *
     * @param dir the directory to replace
     * @param shardings the shardings of the tensors to be saved (any one names the group); empty
     *     on one process
     * @param keep which entries of the old directory the new one keeps
     * @param contents writes the files into the staging directory, calling {@link #save} with it
     * @throws IOException if writing fails; the directory is then unchanged (or, failing after
     *     the commit, replaced by the next save or load)
     */
    public static void replaceDirectory(
            Path dir,
            Map<String, Sharding> shardings,
            Predicate<String> keep,
            AtomicDirectory.Contents contents)
            throws IOException {
        Sharding group = group(shardings);
        if (group == null) {
            AtomicDirectory.replace(dir, keep, contents);
        } else {
            AtomicDirectory.replace(dir, keep, group.getRank(), group::barrier, contents);
        }
    }

    /**
     * Saves adapter weights. On a single-process model this writes {@code dir/file}. On a
     * tensor-parallel model it is a collective that every rank calls: merged, the sharded tensors
     * are gathered and rank 0 writes {@code dir/file}; otherwise every rank writes its own shard
     * file. Rank 0 then writes the companion files, and every rank waits until all is written.
     *
     * @param dir the directory; created when missing
     * @param file the merged file's name
     * @param tensors this rank's tensors by saved key
     * @param shardings the sharding of each sharded key; replicated keys are absent
     * @param merge whether to write one merged file rather than one per rank
     * @param companion the files to write beside, on rank 0
     * @throws IOException if writing fails
     */
    public static void save(
            Path dir,
            String file,
            Map<String, NDArray> tensors,
            Map<String, Sharding> shardings,
            boolean merge,
            Companion companion)
            throws IOException {
        save(dir, file, tensors, Map.of(), shardings, merge, companion);
    }

    /**
     * Saves tensors with string metadata in each file's header, as {@link #save(Path, String, Map,
     * Map, boolean, Companion)} does.
     *
     * @param dir the directory; created when missing
     * @param file the merged file's name
     * @param tensors this rank's tensors by saved key
     * @param metadata the header's metadata
     * @param shardings the sharding of each sharded key; replicated keys are absent
     * @param merge whether to write one merged file rather than one per rank
     * @param companion the files to write beside, on rank 0
     * @throws IOException if writing fails
     */
    public static void save(
            Path dir,
            String file,
            Map<String, NDArray> tensors,
            Map<String, String> metadata,
            Map<String, Sharding> shardings,
            boolean merge,
            Companion companion)
            throws IOException {
        Sharding group = group(shardings);
        Files.createDirectories(dir);
        if (group == null) {
            SafetensorsWriter.write(dir.resolve(file), tensors, metadata);
            companion.write();
            return;
        }
        if (merge) {
            try (NDManager scratch = anyManager(tensors).newSubManager()) {
                Map<String, NDArray> full = new LinkedHashMap<>();
                for (Map.Entry<String, NDArray> entry : tensors.entrySet()) {
                    Sharding sharding = shardings.get(entry.getKey());
                    NDArray value = entry.getValue();
                    if (sharding != null) {
                        value = sharding.gather(value);
                        value.attach(scratch);
                    }
                    full.put(entry.getKey(), value);
                }
                if (group.getRank() == 0) {
                    SafetensorsWriter.write(dir.resolve(file), full, metadata);
                }
            }
        } else {
            SafetensorsWriter.write(
                    dir.resolve(shardName(file, group.getRank(), group.getDegree())),
                    tensors,
                    metadata);
        }
        if (group.getRank() == 0) {
            companion.write();
        }
        group.barrier();
    }

    /**
     * Reads the adapter weights this rank needs: from the merged file (cutting out this rank's part
     * of each sharded key) or, when there is none, from this rank's shard file of a set of the
     * model's degree. Every key and shape is checked first; nothing is returned unless all fit.
     *
     * @param dir the directory
     * @param file the merged file's name
     * @param shapes the local shape of every key the model expects
     * @param shardings the sharding of each sharded key; replicated keys are absent
     * @param manager the manager that owns the returned arrays
     * @param hint what to check when keys or shapes disagree (for example the config fields that
     *     determine them)
     * @return this rank's tensor for every key of {@code shapes}, in its order
     * @throws IOException if a file is missing, truncated or malformed
     * @throws IllegalArgumentException if the file's keys or shapes do not fit, or the shards are
     *     of another degree
     */
    public static Map<String, NDArray> load(
            Path dir,
            String file,
            Map<String, Shape> shapes,
            Map<String, Sharding> shardings,
            NDManager manager,
            String hint)
            throws IOException {
        Sharding group = group(shardings);
        int degree = group == null ? 1 : group.getDegree();
        Path merged = dir.resolve(file);
        boolean full = Files.isRegularFile(merged);
        Path source = full ? merged : shardFile(dir, file, degree, group);
        try (SafetensorsReader reader = SafetensorsReader.open(source)) {
            Map<String, Shape> expected = new LinkedHashMap<>();
            shapes.forEach(
                    (key, local) -> {
                        Sharding sharding = shardings.get(key);
                        expected.put(
                                key, full && sharding != null ? sharding.fullShape(local) : local);
                    });
            checkFits(source, reader.getTensors(), expected, hint);
            Map<String, NDArray> out = new LinkedHashMap<>();
            try {
                for (String key : shapes.keySet()) {
                    NDArray value = reader.read(key, manager);
                    Sharding sharding = shardings.get(key);
                    if (full && sharding != null) {
                        NDArray part = sharding.localPart(value);
                        part.attach(manager);
                        value.close();
                        value = part;
                    }
                    out.put(key, value);
                }
            } catch (IOException | RuntimeException e) {
                out.values().forEach(NDArray::close);
                throw e;
            }
            return out;
        }
    }

    private static Path shardFile(Path dir, String file, int degree, Sharding group)
            throws IOException {
        SortedSet<Integer> degrees = shardDegrees(dir, file);
        if (degrees.isEmpty()) {
            List<String> present = new ArrayList<>();
            try (Stream<Path> files = Files.list(dir)) {
                files.forEach(p -> present.add(p.getFileName().toString()));
            }
            String hint = "";
            if (present.contains("adapter_model.bin")) {
                hint =
                        "; pickled PyTorch weights are not read (only Paddle's pickles are, with"
                                + " numpy arrays alone), save them as safetensors (e.g. with"
                                + " safetensors.torch.save_file) under that name";
            }
            throw new NoSuchFileException(
                    dir.resolve(file).toString(),
                    null,
                    "missing; the directory holds " + present + hint);
        }
        if (!degrees.contains(degree)) {
            throw new IllegalArgumentException(
                    dir
                            + " holds an adapter sharded for tensor_parallel_degree "
                            + degrees
                            + " and no merged "
                            + file
                            + ", but the model's degree is "
                            + degree
                            + "; load it into a model of that degree and save it merged"
                            + " (mergeTensorParallel = true), then load the merged file here");
        }
        int rank = group == null ? 0 : group.getRank();
        Path shard = dir.resolve(shardName(file, rank, degree));
        if (!Files.isRegularFile(shard)) {
            throw new NoSuchFileException(
                    shard.toString(),
                    null,
                    "missing from the set of " + degree + " shards; copy every rank's file");
        }
        return shard;
    }

    private static void checkFits(
            Path file, Map<String, TensorInfo> tensors, Map<String, Shape> expected, String hint) {
        List<String> problems = new ArrayList<>();
        expected.forEach(
                (key, shape) -> {
                    TensorInfo info = tensors.get(key);
                    if (info == null) {
                        problems.add("missing key " + key + " (expected shape " + shape + ')');
                    } else if (!info.shape().equals(shape)) {
                        problems.add(
                                "key "
                                        + key
                                        + " has shape "
                                        + info.shape()
                                        + " but the model expects "
                                        + shape);
                    }
                });
        for (String key : tensors.keySet()) {
            if (!expected.containsKey(key)) {
                problems.add("unexpected key " + key);
            }
        }
        if (!problems.isEmpty()) {
            List<String> shown = problems.subList(0, Math.min(MAX_LISTED, problems.size()));
            String more =
                    problems.size() > MAX_LISTED
                            ? "; and " + (problems.size() - MAX_LISTED) + " more"
                            : "";
            throw new IllegalArgumentException(
                    file
                            + " does not fit the model and "
                            + hint
                            + ": "
                            + String.join("; ", shown)
                            + more);
        }
    }

    private static Sharding group(Map<String, Sharding> shardings) {
        Sharding first = null;
        for (Map.Entry<String, Sharding> entry : shardings.entrySet()) {
            Sharding sharding = entry.getValue();
            if (first == null) {
                first = sharding;
            } else if (sharding.getDegree() != first.getDegree()
                    || sharding.getRank() != first.getRank()) {
                throw new IllegalArgumentException(
                        entry.getKey()
                                + " is split "
                                + sharding.getDegree()
                                + " ways (rank "
                                + sharding.getRank()
                                + ") but other parameters "
                                + first.getDegree()
                                + " ways (rank "
                                + first.getRank()
                                + "); one model has one tensor-parallel group");
            }
        }
        return first;
    }

    private static NDManager anyManager(Map<String, NDArray> tensors) {
        for (NDArray array : tensors.values()) {
            return array.getManager();
        }
        throw new IllegalArgumentException("no tensors to save");
    }
}
