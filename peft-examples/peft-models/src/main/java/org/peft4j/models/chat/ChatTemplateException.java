package org.peft4j.models.chat;

/**
 * A chat template could not be loaded or rendered: no template in the model directory, a template
 * with a syntax error, or a template that refused the conversation with {@code raise_exception}.
 * The message names the file and says what to do.
 */
public class ChatTemplateException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message what went wrong, naming the file, and what to do
     */
    public ChatTemplateException(String message) {
        super(message);
    }

    /**
     * Creates the exception with its cause.
     *
     * @param message what went wrong, naming the file, and what to do
     * @param cause the cause
     */
    public ChatTemplateException(String message, Throwable cause) {
        super(message, cause);
    }
}
