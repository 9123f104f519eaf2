package org.peft4j.core.io;

import java.io.IOException;
import java.nio.file.Path;

/** A safetensors file that is truncated, malformed or holds what this library cannot read. */
public class SafetensorsFormatException extends IOException {

    private static final long serialVersionUID = 1L;

    /**
     * Creates an exception whose message starts with the file's path.
     *
     * @param file the file that could not be read
     * @param message what is wrong and, where possible, what to do about it
     */
    public SafetensorsFormatException(Path file, String message) {
        super(file + ": " + message);
    }
}
