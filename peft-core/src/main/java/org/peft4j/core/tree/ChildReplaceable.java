package org.peft4j.core.tree;

import ai.djl.nn.Block;

/**
 * A composite block that lets a child be swapped for another block, so that its forward pass calls
 * the new one. Blocks of this project implement it; DJL's own composites are handled by {@link
 * BlockReplacer} through their children list and fields.
 */
public interface ChildReplaceable {

    /**
     * Replaces the child at a logical path segment, both in the block's children list and wherever
     * the forward pass reaches it.
     *
     * @param segment the child's logical name, such as {@code "q_proj"}
     * @param replacement the new child
     * @throws IllegalArgumentException if there is no such child, or the replacement cannot take
     *     its place (the message says why)
     */
    void replaceChild(String segment, Block replacement);
}
