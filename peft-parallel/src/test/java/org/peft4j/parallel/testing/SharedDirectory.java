package org.peft4j.parallel.testing;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.peft4j.parallel.comm.Communicator;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Comparator;
import java.util.stream.Stream;

/** A temporary directory that rank 0 creates and every rank of a group sees (same host). */
public final class SharedDirectory implements AutoCloseable {

    private static final int MAX_PATH = 1024;

    private final Communicator group;
    private final Path path;

    private SharedDirectory(Communicator group, Path path) {
        this.group = group;
        this.path = path;
    }

    /**
     * Creates the directory on rank 0 and tells every rank its path (a collective).
     *
     * @param group the ranks
     * @param manager a manager for the message
     * @return the directory
     * @throws IOException if it cannot be created
     */
    public static SharedDirectory create(Communicator group, NDManager manager) throws IOException {
        byte[] bytes = new byte[MAX_PATH];
        if (group.getRank() == 0) {
            byte[] name =
                    Files.createTempDirectory("peft4j-mpi")
                            .toString()
                            .getBytes(StandardCharsets.UTF_8);
            System.arraycopy(name, 0, bytes, 0, name.length);
        }
        try (NDManager scope = manager.newSubManager()) {
            NDArray message = scope.create(bytes, new Shape(MAX_PATH)).toType(DataType.UINT8, true);
            group.broadcast(message, 0);
            byte[] received = message.toByteArray();
            int length = 0;
            while (length < received.length && received[length] != 0) {
                length++;
            }
            return new SharedDirectory(
                    group, Paths.get(new String(received, 0, length, StandardCharsets.UTF_8)));
        }
    }

    /**
     * Returns the directory.
     *
     * @return the path, the same on every rank
     */
    public Path path() {
        return path;
    }

    /** Waits for every rank, then rank 0 deletes the directory. */
    @Override
    public void close() throws IOException {
        group.barrier();
        if (group.getRank() == 0) {
            try (Stream<Path> files = Files.walk(path)) {
                for (Path p : (Iterable<Path>) files.sorted(Comparator.reverseOrder())::iterator) {
                    Files.delete(p);
                }
            }
        }
    }
}
