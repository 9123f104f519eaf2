package org.peft4j.models.chat;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;

import java.time.Instant;
import java.time.ZonedDateTime;

/**
 * The globals transformers gives every chat template: {@code raise_exception(message)} and {@code
 * strftime_now(format)}. Jinjava calls functions as static methods, so the time comes from the
 * render's configuration (its date-time provider and time zone, which {@link ChatTemplate} sets
 * from the caller's clock).
 */
public final class TemplateFunctions {

    private TemplateFunctions() {}

    /**
     * The template's {@code raise_exception}: stops the render with the template's message.
     *
     * @param message the template's message
     * @return never
     * @throws Raised always
     */
    public static String raiseException(Object message) {
        throw new Raised(String.valueOf(message));
    }

    /**
     * The template's {@code strftime_now}: the render's current time, formatted as Python does.
     *
     * @param format a Python strftime format
     * @return the formatted time
     */
    public static String strftimeNow(String format) {
        JinjavaInterpreter interpreter = JinjavaInterpreter.getCurrent();
        long millis = interpreter.getConfig().getDateTimeProvider().getCurrentTimeMillis();
        ZonedDateTime now =
                ZonedDateTime.ofInstant(
                        Instant.ofEpochMilli(millis), interpreter.getConfig().getTimeZone());
        return PyStrftime.format(format, now);
    }

    /** What {@code raise_exception} throws through jinjava; the message is the template's. */
    static final class Raised extends RuntimeException {

        private static final long serialVersionUID = 1L;

        Raised(String message) {
            super(message);
        }
    }
}
