package org.peft4j.lora;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * Replaces an adapter's weights in place ({@link LoRAModel#hotswapAdapter}): the new adapter is
 * checked to adapt the same layers with the same rank and to train no other parameters, its file
 * is read and checked key by key and shape by shape, and only then are the arrays overwritten, so
 * that a refused swap leaves the adapter as it was.
 */
final class LoRAHotswap {

    private LoRAHotswap() {}

    static void swap(LoRAModel model, String name, LoRAConfig config, Path dir)
            throws IOException {
        LoRAConfig current = model.getPeftConfig(name);
        String what = "cannot hot-swap adapter \"" + name + "\" with " + dir + ": ";
        if (config.getR() != current.getR()) {
            throw new IllegalArgumentException(
                    what
                            + "its r is "
                            + config.getR()
                            + ", the adapter's "
                            + current.getR()
                            + "; hot swap keeps the shapes, so load it with loadAdapter instead");
        }
        if (config.getTrainableBias() != current.getTrainableBias()
                || !config.getTrainableModules().equals(current.getTrainableModules())) {
            throw new IllegalArgumentException(
                    what
                            + "it trains other base parameters (bias "
                            + config.getTrainableBias()
                            + ", trainable_modules "
                            + config.getTrainableModules()
                            + ") than the adapter (bias "
                            + current.getTrainableBias()
                            + ", trainable_modules "
                            + current.getTrainableModules()
                            + "); load it with loadAdapter instead");
        }
        Set<String> layers = model.getLoRALayers(name).keySet();
        // the Linear layers the new config adapts, those that already carry adapters included
        Set<String> targeted = LoRATargets.find(model.getBaseModel(), config, true).keySet();
        if (!targeted.equals(layers)) {
            Set<String> missing = new LinkedHashSet<>(layers);
            missing.removeAll(targeted);
            Set<String> extra = new LinkedHashSet<>(targeted);
            extra.removeAll(layers);
            throw new IllegalArgumentException(
                    what
                            + "it adapts other layers (not "
                            + missing
                            + ", but also "
                            + extra
                            + "); hot swap keeps the layers, so load it with loadAdapter"
                            + " instead");
        }
        LoRACheckpoint.loadWeights(model, name, dir);
        if (config.getScaling() != current.getScaling()) {
            model.rescale(name, config.getScaling());
        }
    }
}
