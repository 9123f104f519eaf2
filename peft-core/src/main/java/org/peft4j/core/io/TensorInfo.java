package org.peft4j.core.io;

import ai.djl.ndarray.types.Shape;

/**
 * One entry of a safetensors header.
 *
 * @param name the tensor's key, such as {@code "model.layers.0.self_attn.q_proj.weight"}
 * @param dtype the element type on disk
 * @param shape the tensor's shape
 * @param begin the first byte of the data, relative to the end of the header
 * @param end one past the last byte of the data, relative to the end of the header
 */
public record TensorInfo(String name, TensorDType dtype, Shape shape, long begin, long end) {

    /**
     * Returns the number of bytes the tensor takes on disk.
     *
     * @return {@code end - begin}
     */
    public long byteLength() {
        return end - begin;
    }
}
