package org.peft4j.core.io;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;

/**
 * The main class {@link DirectoryLockTest} starts as another process: tries to lock a lock file
 * as a concurrent save would, without waiting, and prints {@code held} or {@code free}.
 */
public final class LockProbe {

    private LockProbe() {}

    /**
     * Tries the lock.
     *
     * @param args the lock file
     * @throws IOException if it cannot be opened
     */
    public static void main(String[] args) throws IOException {
        try (FileChannel channel =
                FileChannel.open(Paths.get(args[0]), StandardOpenOption.WRITE)) {
            FileLock lock = channel.tryLock();
            System.out.print(lock == null ? "held" : "free");
        }
    }
}
