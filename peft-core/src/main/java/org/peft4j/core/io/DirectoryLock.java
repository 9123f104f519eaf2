package org.peft4j.core.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * An exclusive lock on a lock file, across processes (an operating-system lock, released when its
 * holder dies) and across the threads of this one, for {@link AtomicDirectory}. The holder deletes
 * the file when done; a waiter that then gets the lock of the deleted file sees that the name no
 * longer leads to it (by a token it writes) and locks the name anew.
 *
 * <p>The token is read back through a second channel that stays open until the lock is released:
 * the lock is a POSIX record lock, which belongs to the process and is dropped when the process
 * closes <em>any</em> descriptor of the file, so reading it with {@link Files#readAllBytes} would
 * release the lock at once.
 */
final class DirectoryLock implements AutoCloseable {

    private static final Map<Path, ReentrantLock> LOCAL = new ConcurrentHashMap<>();
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final int TOKEN_BYTES = 16;

    private final Path file;
    private final FileChannel channel;
    private final FileChannel check;
    private final ReentrantLock local;

    private DirectoryLock(Path file, FileChannel channel, FileChannel check, ReentrantLock local) {
        this.file = file;
        this.channel = channel;
        this.check = check;
        this.local = local;
    }

    /**
     * Waits for the lock and takes it.
     *
     * @param file the lock file; created when missing
     * @return the lock, to be closed
     * @throws IOException if the file cannot be created or locked
     */
    static DirectoryLock acquire(Path file) throws IOException {
        ReentrantLock local = LOCAL.computeIfAbsent(file, f -> new ReentrantLock());
        local.lock();
        try {
            DirectoryLock lock = null;
            while (lock == null) {
                lock = tryOnce(file, local);
            }
            return lock;
        } catch (IOException | RuntimeException e) {
            local.unlock();
            throw e;
        }
    }

    /** Locks what the name leads to now; {@code null} when the holder deleted it meanwhile. */
    private static DirectoryLock tryOnce(Path file, ReentrantLock local) throws IOException {
        FileChannel channel =
                FileChannel.open(
                        file,
                        StandardOpenOption.CREATE,
                        StandardOpenOption.READ,
                        StandardOpenOption.WRITE);
        FileChannel check = null;
        try {
            channel.lock();
            byte[] token = new byte[TOKEN_BYTES];
            RANDOM.nextBytes(token);
            channel.truncate(0);
            channel.write(ByteBuffer.wrap(token), 0);
            check = openOrNull(file);
            if (check != null && Arrays.equals(token, read(check))) {
                return new DirectoryLock(file, channel, check, local);
            }
        } catch (IOException | RuntimeException e) {
            closeBoth(channel, check, e);
            throw e;
        }
        closeBoth(channel, check, null);
        return null;
    }

    private static FileChannel openOrNull(Path file) throws IOException {
        try {
            return FileChannel.open(file, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            return null;
        }
    }

    private static byte[] read(FileChannel check) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(TOKEN_BYTES + 1);
        while (buffer.hasRemaining() && check.read(buffer) >= 0) {
            // a file of more bytes than a token is another waiter's, and differs in any case
        }
        return Arrays.copyOf(buffer.array(), buffer.position());
    }

    private static void closeBoth(FileChannel channel, FileChannel check, Exception failure)
            throws IOException {
        try {
            channel.close(); // releases the lock
        } catch (IOException e) {
            if (failure == null) {
                throw e;
            }
            failure.addSuppressed(e);
        } finally {
            if (check != null) {
                check.close();
            }
        }
    }

    /** Deletes the lock file and releases the lock. */
    @Override
    public void close() throws IOException {
        try {
            Files.deleteIfExists(file); // while still held: no waiter locks the name in between
        } finally {
            try {
                closeBoth(channel, check, null);
            } finally {
                local.unlock();
            }
        }
    }
}
