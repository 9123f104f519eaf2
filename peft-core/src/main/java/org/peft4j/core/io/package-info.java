/**
 * Reading and writing tensors on disk: the safetensors format with its header validated against the
 * file, bfloat16 widened to float32 in Java, and atomic writes.
 *
 * <p>A safetensors file is {@code u64 N} (little endian), then {@code N} bytes of JSON mapping each
 * tensor name to {@code {"dtype", "shape", "data_offsets": [begin, end]}} (offsets relative to the
 * end of the header) plus an optional {@code "__metadata__"} map of strings, then the raw
 * little-endian data.
 */
package org.peft4j.core.io;
