package org.peft4j.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.ServiceLoader;

/** The {@link PeftMethod}s on the class path. */
public final class PeftMethods {

    private PeftMethods() {}

    /**
     * Lists the methods on the class path.
     *
     * @return the methods in service-loader order
     */
    public static List<PeftMethod> all() {
        List<PeftMethod> methods = new ArrayList<>();
        ServiceLoader.load(PeftMethod.class, PeftMethods.class.getClassLoader())
                .forEach(methods::add);
        return Collections.unmodifiableList(methods);
    }

    /**
     * Finds the method of a {@code peft_type}.
     *
     * @param peftType for example {@code "LORA"}
     * @param source where the type was read, for the message
     * @return the method
     * @throws IllegalArgumentException if no module on the class path implements the type
     */
    public static PeftMethod forType(String peftType, String source) {
        List<String> known = new ArrayList<>();
        for (PeftMethod method : all()) {
            if (method.getPeftType().equals(peftType)) {
                return method;
            }
            known.add(method.getPeftType());
        }
        throw new IllegalArgumentException(
                source
                        + ": peft_type \""
                        + peftType
                        + "\" is not available; the class path provides "
                        + known
                        + " (LORA comes with org.peft4j:peft-lora, PREFIX_TUNING with"
                        + " org.peft4j:peft-prefix)");
    }
}
