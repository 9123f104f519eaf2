package org.peft4j.lora;

import ai.djl.nn.Block;
import ai.djl.nn.core.Linear;

import org.peft4j.core.tree.BlockPaths;
import org.peft4j.core.tree.TargetModules;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/** Finds the Linear layers of a model that a {@link LoRAConfig} adapts. */
final class LoRATargets {

    private LoRATargets() {}

    /**
     * Returns the layers to adapt, by logical path, in tree order.
     *
     * @throws IllegalArgumentException if nothing matches (listing the paths that exist), or a
     *     match is not a plain {@code Linear} (naming its path and type)
     */
    static Map<String, Linear> find(Block root, LoRAConfig config) {
        return find(root, config, false);
    }

    /**
     * Returns the layers to adapt, by logical path, in tree order; with {@code adapted}, layers
     * that already carry an adapter are among them (a further named adapter joins them).
     */
    static Map<String, Linear> find(Block root, LoRAConfig config, boolean adapted) {
        TargetModules targets = config.getTargetModules();
        TargetModules excludes = config.getExcludeModules();
        Map<String, Block> blocks = BlockPaths.blocks(root);
        Map<String, Linear> found = new LinkedHashMap<>();
        for (Map.Entry<String, Block> entry : blocks.entrySet()) {
            String path = entry.getKey();
            if (path.isEmpty()
                    || !targets.matches(path)
                    || excludes != null && excludes.matches(path)) {
                continue;
            }
            Block block = entry.getValue();
            if (block instanceof LoRALinear && !adapted) {
                throw new IllegalArgumentException(
                        "target_modules matched "
                                + path
                                + ", which already has a LoRA adapter; merge or unload it first");
            }
            if (!(block instanceof Linear)) {
                throw new IllegalArgumentException(
                        "target_modules "
                                + targets
                                + " matched "
                                + path
                                + ", a "
                                + block.getClass().getName()
                                + ", but LoRA adapts only ai.djl.nn.core.Linear layers; narrow"
                                + " the pattern to the Linear layers inside it");
            }
            found.put(path, (Linear) block);
        }
        if (found.isEmpty()) {
            throw new IllegalArgumentException(
                    "target_modules "
                            + targets
                            + (excludes == null ? "" : " minus exclude_modules " + excludes)
                            + " match no block of the "
                            + root.getClass().getSimpleName()
                            + "; its block paths are (<n> for any index): "
                            + describe(blocks));
        }
        return Collections.unmodifiableMap(found);
    }

    /**
     * Returns the paths, among every block path of {@code root} but the root, that a target
     * matcher selects, in tree order, whatever their type.
     */
    static Set<String> select(Block root, TargetModules targets, TargetModules excludes) {
        Set<String> out = new LinkedHashSet<>();
        for (String path : BlockPaths.blocks(root).keySet()) {
            if (!path.isEmpty()
                    && targets.matches(path)
                    && (excludes == null || !excludes.matches(path))) {
                out.add(path);
            }
        }
        return out;
    }

    private static String describe(Map<String, Block> blocks) {
        Set<String> shapes = new TreeSet<>();
        for (Map.Entry<String, Block> entry : blocks.entrySet()) {
            if (!entry.getKey().isEmpty()) {
                shapes.add(
                        entry.getKey().replaceAll("(^|\\.)\\d+(?=\\.|$)", "$1<n>")
                                + " ("
                                + entry.getValue().getClass().getSimpleName()
                                + ')');
            }
        }
        return String.join(", ", shapes);
    }
}
