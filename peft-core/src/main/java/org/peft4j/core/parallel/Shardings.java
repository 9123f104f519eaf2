package org.peft4j.core.parallel;

import ai.djl.nn.Block;
import ai.djl.nn.Parameter;

import org.peft4j.core.tree.BlockPaths;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/** Finds the shardings of a model's parameters through its {@link ShardedBlock}s. */
public final class Shardings {

    private Shardings() {}

    /**
     * Returns the sharding of each of the given parameters that a {@link ShardedBlock} of the model
     * splits.
     *
     * @param root the model
     * @param parameters parameters of the model by any key (a saved key, say)
     * @return the sharded ones' shardings by the same keys, in the same order; replicated ones are
     *     absent
     */
    public static Map<String, Sharding> of(Block root, Map<String, Parameter> parameters) {
        Map<Parameter, Sharding> byParameter = new IdentityHashMap<>();
        for (Block block : BlockPaths.blocks(root).values()) {
            if (block instanceof ShardedBlock) {
                ShardedBlock sharded = (ShardedBlock) block;
                // a block may answer for its children's parameters too (an adapter's encoder)
                for (Parameter parameter : block.getParameters().values()) {
                    Sharding sharding = sharded.getSharding(parameter);
                    if (sharding != null) {
                        byParameter.putIfAbsent(parameter, sharding);
                    }
                }
            }
        }
        Map<String, Sharding> out = new LinkedHashMap<>();
        parameters.forEach(
                (key, parameter) -> {
                    Sharding sharding = byParameter.get(parameter);
                    if (sharding != null) {
                        out.put(key, sharding);
                    }
                });
        return Collections.unmodifiableMap(out);
    }

    /**
     * Returns the tensor-parallel degree of a model: that of its sharded blocks, or 1.
     *
     * @param root the model
     * @return the degree
     * @throws IllegalArgumentException if blocks disagree
     */
    public static int degree(Block root) {
        int degree = 1;
        String first = null;
        for (Map.Entry<String, Block> entry : BlockPaths.blocks(root).entrySet()) {
            if (entry.getValue() instanceof ShardedBlock) {
                int own = ((ShardedBlock) entry.getValue()).getTensorParallelDegree();
                if (first != null && own != degree) {
                    throw new IllegalArgumentException(
                            entry.getKey()
                                    + " is split "
                                    + own
                                    + " ways but "
                                    + first
                                    + " "
                                    + degree
                                    + " ways; one model has one tensor-parallel degree");
                }
                first = entry.getKey();
                degree = own;
            }
        }
        return degree;
    }
}
