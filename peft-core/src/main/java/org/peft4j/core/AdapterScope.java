package org.peft4j.core;

/**
 * A scope, opened by {@link PeftModel#disableAdapter()}, inside which the model computes what its
 * base model computes; closing it turns the adapter back on.
 *
 * <pre>{@code
 * try (AdapterScope base = model.disableAdapter()) {
 *     NDList reference = predictor.predict(input); // base-model output
 * }
 * }</pre>
 */
@FunctionalInterface
public interface AdapterScope extends AutoCloseable {

    /** Turns the adapter back on. */
    @Override
    void close();
}
