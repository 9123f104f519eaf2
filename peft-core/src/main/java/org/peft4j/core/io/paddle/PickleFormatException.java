package org.peft4j.core.io.paddle;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A pickle that is truncated, malformed, or asks for a global that a Paddle state file never
 * holds. Nothing of such a file is executed or constructed.
 */
public class PickleFormatException extends IOException {

    private static final long serialVersionUID = 1L;

    /**
     * Creates an exception whose message starts with the file's path.
     *
     * @param file the file that could not be read
     * @param message what is wrong and, where possible, what to do about it
     */
    public PickleFormatException(Path file, String message) {
        super(file + ": " + message);
    }

    /**
     * Creates an exception whose message starts with the file's path.
     *
     * @param file the file that could not be read
     * @param message what is wrong
     * @param cause the parser's error
     */
    public PickleFormatException(Path file, String message, Throwable cause) {
        super(file + ": " + message, cause);
    }
}
