package org.peft4j.core.tree;

import ai.djl.nn.Block;
import ai.djl.nn.BlockList;
import ai.djl.nn.ParallelBlock;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.util.Pair;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/** Logical dotted paths of the blocks and parameters of a DJL block tree. */
public final class BlockPaths {

    private BlockPaths() {}

    /**
     * A child of a block.
     *
     * @param segment the child's logical path segment, such as {@code "q_proj"} or {@code "0"}
     * @param key the child's DJL key, such as {@code "01q_proj"}
     * @param index the child's position in its parent's children list
     * @param block the child
     */
    public record Child(String segment, String key, int index, Block block) {}

    /**
     * Lists the children of a block with their logical segments.
     *
     * @param parent any block
     * @return the children in order
     */
    public static List<Child> children(Block parent) {
        BlockList list = parent.getChildren();
        boolean positional = parent instanceof SequentialBlock || parent instanceof ParallelBlock;
        List<Child> children = new ArrayList<>(list.size());
        for (int i = 0; i < list.size(); i++) {
            Pair<String, Block> pair = list.get(i);
            String segment = positional ? Integer.toString(i) : stripPosition(pair.getKey(), i);
            children.add(new Child(segment, pair.getKey(), i, pair.getValue()));
        }
        return children;
    }

    /**
     * Lists every block of a tree by logical path, parents before children. The root's path is the
     * empty string.
     *
     * @param root the root of the tree
     * @return an ordered map from path to block
     */
    public static Map<String, Block> blocks(Block root) {
        Map<String, Block> out = new LinkedHashMap<>();
        collectBlocks(root, "", out);
        return Collections.unmodifiableMap(out);
    }

    private static void collectBlocks(Block block, String path, Map<String, Block> out) {
        out.put(path, block);
        for (Child child : children(block)) {
            collectBlocks(child.block(), join(path, child.segment()), out);
        }
    }

    /**
     * Lists every parameter of a tree by logical path ({@code <block path>.<parameter name>}). A
     * parameter shared by two blocks (tied weights) is listed once, under its first path.
     *
     * @param root the root of the tree
     * @return an ordered map from path to parameter
     */
    public static Map<String, Parameter> parameters(Block root) {
        Map<String, Parameter> out = new LinkedHashMap<>();
        Set<Parameter> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        for (Map.Entry<String, Block> entry : blocks(root).entrySet()) {
            for (Parameter parameter : entry.getValue().getDirectParameters().values()) {
                if (seen.add(parameter)) {
                    out.put(join(entry.getKey(), parameter.getName()), parameter);
                }
            }
        }
        return Collections.unmodifiableMap(out);
    }

    /**
     * Joins a parent path and a segment with a dot.
     *
     * @param parent a path, empty for the root
     * @param segment the child's segment
     * @return {@code segment} below the root, {@code parent + "." + segment} elsewhere
     */
    public static String join(String parent, String segment) {
        return parent.isEmpty() ? segment : parent + '.' + segment;
    }

    /**
     * Returns the DJL key's logical segment: the key without the position prefix that {@code
     * AbstractBlock.addChildBlock} puts in front ({@code "%02d"} of the 1-based position).
     */
    private static String stripPosition(String key, int index) {
        String prefix = String.format(Locale.ROOT, "%02d", index + 1);
        if (key.startsWith(prefix) && key.length() > prefix.length()) {
            return key.substring(prefix.length());
        }
        return key;
    }
}
