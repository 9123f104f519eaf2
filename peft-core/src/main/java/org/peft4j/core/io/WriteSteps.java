package org.peft4j.core.io;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The steps of peft4j's writes ({@link AtomicFiles}, {@link AtomicDirectory}), and a hook that is
 * told of each one as it is done. A test stops a writer after any step by throwing from the
 * listener, as a kill or a full disk would stop it there, and then checks what the next save or
 * load finds: an {@link Error} skips every clean-up, as a kill does; an {@link IOException} is a
 * failed write, which the writer cleans up after.
 *
 * <p>The hook is one listener for the whole process, set for a scope:
 *
 * <pre>{@code
 * try (WriteSteps.Listening l = WriteSteps.listen((step, path) -> { if (...) throw new Kill(); })) {
 *     model.savePretrained(dir);
 * }
 * }</pre>
 */
public final class WriteSteps {

    /** A step of a write, in the order a save takes them. */
    public enum Step {
        /** A file's bytes are in its temporary file, not yet forced to disk (path: the file). */
        FILE_WRITTEN,
        /** A file's temporary file was renamed to the file (path: the file). */
        FILE_REPLACED,
        /** Every file of a new directory is in its staging directory, on disk (path: the target). */
        STAGED,
        /** The staging directory carries its completion mark: the new directory wins from here. */
        COMMITTED,
        /** The old directory was renamed aside (path: the target). */
        MOVED_ASIDE,
        /** The staging directory was renamed to the target (path: the target). */
        SWAPPED,
        /** An entry of the old directory was moved into the new one (path: the entry). */
        CARRIED,
        /** The completion mark was removed from the new directory (path: the target). */
        UNMARKED,
        /** An entry of a directory being discarded was deleted (path: the entry). */
        REMOVED,
        /** Recovery renamed an old directory back, no new one being there (path: the target). */
        RESTORED
    }

    /** Told of every step. */
    @FunctionalInterface
    public interface Listener {

        /**
         * Called right after a step.
         *
         * @param step the step done
         * @param path the file or directory it concerns
         * @throws IOException to fail the write there
         */
        void reached(Step step, Path path) throws IOException;
    }

    /** The scope of a listener; closing it removes the listener. */
    public static final class Listening implements AutoCloseable {

        private final Listener previous;

        private Listening(Listener previous) {
            this.previous = previous;
        }

        /** Puts back the listener there was before. */
        @Override
        public void close() {
            listener = previous;
        }
    }

    private static volatile Listener listener;

    private WriteSteps() {}

    /**
     * Sets the listener of every write in this process until the returned scope is closed.
     *
     * @param listener the listener
     * @return the scope
     */
    public static Listening listen(Listener listener) {
        Listening scope = new Listening(WriteSteps.listener);
        WriteSteps.listener = listener;
        return scope;
    }

    static void reached(Step step, Path path) throws IOException {
        Listener current = listener;
        if (current != null) {
            current.reached(step, path);
        }
    }
}
