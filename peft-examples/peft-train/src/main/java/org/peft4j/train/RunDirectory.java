package org.peft4j.train;

import org.peft4j.core.io.AtomicDirectory;
import org.peft4j.parallel.TensorParallel;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * A training run's output directory and its {@code checkpoint-<step>} directories, each written
 * all or nothing ({@link AtomicDirectory}): a run killed at any moment leaves every checkpoint
 * whole or absent, and the next run (or {@link #latestCheckpoint}) first finishes or undoes what
 * the kill interrupted.
 */
final class RunDirectory {

    private static final String CHECKPOINT = "checkpoint-";

    private RunDirectory() {}

    /**
     * Finishes or undoes the interrupted saves of a run's output directory and of its entries (a
     * checkpoint, the final adapter), and creates it when missing. Call it on the one process that
     * writes the directory, before it writes. (The temporary file an interrupted write of {@code
     * loss.svg} or {@code metrics.csv} left is removed when the run writes that file again, see
     * {@link org.peft4j.core.io.AtomicFiles}.)
     *
     * @param output the run's output directory
     * @throws IOException if the directory cannot be recovered or created
     */
    static void prepare(Path output) throws IOException {
        recover(output);
        Files.createDirectories(output);
    }

    /**
     * Writes a checkpoint directory as a whole, as a collective of the tensor-parallel group that
     * writes the run's adapter (every rank of it calls this): the ranks write into one staging
     * directory and rank 0 swaps it in; a run killed meanwhile leaves no {@code checkpoint-<step>},
     * or a complete one.
     *
     * @param output the run's output directory
     * @param step the step, which names the directory
     * @param group the writing ranks
     * @param contents writes the checkpoint's files into the staging directory
     * @throws IOException if writing fails; no checkpoint of that step is then left
     */
    static void writeCheckpoint(
            Path output, int step, TensorParallel group, AtomicDirectory.Contents contents)
            throws IOException {
        AtomicDirectory.replace(
                output.resolve(CHECKPOINT + step),
                AtomicDirectory.KEEP_NOTHING,
                group.getRank(),
                group::barrier,
                contents);
    }

    /**
     * Deletes all but the newest {@code keep} complete checkpoints, each all or nothing.
     *
     * @param output the run's output directory
     * @param keep how many to keep
     * @throws IOException if one cannot be deleted
     */
    static void prune(Path output, int keep) throws IOException {
        List<Path> all = checkpoints(output);
        for (int i = 0; i < all.size() - keep; i++) {
            AtomicDirectory.delete(all.get(i));
        }
    }

    /**
     * Finds the newest complete checkpoint of an output directory, after recovering what a killed
     * run left (so a checkpoint whose save was interrupted before its commit is not there, and one
     * interrupted after it is whole).
     *
     * @param output a run's output directory, or a checkpoint directory itself
     * @return the checkpoint directory
     * @throws IOException if there is none
     */
    static Path latestCheckpoint(Path output) throws IOException {
        recover(output);
        if (Files.isRegularFile(output.resolve(TrainingState.FILE))) {
            return output;
        }
        List<Path> all = checkpoints(output);
        if (all.isEmpty()) {
            throw new NoSuchFileException(
                    output.toString(),
                    null,
                    "holds no complete checkpoint-<step> directory to resume from");
        }
        return all.get(all.size() - 1);
    }

    private static void recover(Path output) throws IOException {
        AtomicDirectory.recover(output); // the final adapter's save replaces the whole directory
        AtomicDirectory.recoverChildren(output);
    }

    /**
     * The complete checkpoints, oldest first; {@code trainer_state.json} tells a complete one from
     * a directory an earlier peft4j left half written (it wrote the file last).
     */
    private static List<Path> checkpoints(Path output) throws IOException {
        if (!Files.isDirectory(output)) {
            return List.of();
        }
        try (Stream<Path> files = Files.list(output)) {
            return files.filter(p -> p.getFileName().toString().matches(CHECKPOINT + "\\d+"))
                    .filter(p -> Files.isRegularFile(p.resolve(TrainingState.FILE)))
                    .sorted(Comparator.comparingInt(RunDirectory::step))
                    .toList();
        }
    }

    private static int step(Path checkpoint) {
        return Integer.parseInt(checkpoint.getFileName().toString().substring(CHECKPOINT.length()));
    }
}
