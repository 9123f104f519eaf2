package org.peft4j.models.llama.weights;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import java.io.Closeable;
import java.io.IOException;
import java.util.Set;

/** Tensors of a checkpoint by their Hugging Face names, read one at a time. */
interface WeightSource extends Closeable {

    /** Returns where the weights come from, for messages. */
    String describe();

    /** Returns the names of every tensor. */
    Set<String> names();

    /** Returns a tensor's shape; {@code name} must be one of {@link #names()}. */
    Shape shape(String name);

    /** Reads a tensor as float32 into a new array owned by {@code manager}. */
    NDArray load(String name, NDManager manager) throws IOException;
}
