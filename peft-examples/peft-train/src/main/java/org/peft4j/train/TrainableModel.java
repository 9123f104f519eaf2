package org.peft4j.train;

import ai.djl.nn.Block;
import ai.djl.nn.Parameter;

import org.peft4j.core.PeftModel;
import org.peft4j.core.tree.BlockPaths;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;

/**
 * What {@link FineTuner} trains: a block, the parameters it updates, and how to save the result. An
 * adapter model trains its adapter; a plain model can train all its parameters (full fine-tuning,
 * which the demo's pretraining and the benchmark's baseline use).
 */
public interface TrainableModel {

    /**
     * Returns the block whose forward pass is trained.
     *
     * @return the block
     */
    Block block();

    /**
     * Returns the parameters the optimizer updates.
     *
     * @return parameters by name
     */
    Map<String, Parameter> trainableParameters();

    /**
     * Saves what was trained.
     *
     * @param dir the directory
     * @throws IOException if writing fails
     */
    void save(Path dir) throws IOException;

    /**
     * Describes the model for the log.
     *
     * @return for example the trainable-parameter line
     */
    String describe();

    /**
     * Trains an adapter.
     *
     * @param model the adapter model
     * @return the trainable view
     */
    static TrainableModel of(PeftModel model) {
        return new TrainableModel() {
            @Override
            public Block block() {
                return model;
            }

            @Override
            public Map<String, Parameter> trainableParameters() {
                return model.getTrainableParameters();
            }

            @Override
            public void save(Path dir) throws IOException {
                model.savePretrained(dir);
            }

            @Override
            public String describe() {
                return model.trainableParametersSummary();
            }
        };
    }

    /** Saves a fully trained model. */
    @FunctionalInterface
    interface Saver {
        /**
         * Saves.
         *
         * @param dir the directory
         * @throws IOException if writing fails
         */
        void save(Path dir) throws IOException;
    }

    /**
     * Trains every parameter of a model.
     *
     * @param block the model; its parameters are unfrozen
     * @param saver how to save it
     * @return the trainable view
     */
    static TrainableModel full(Block block, Saver saver) {
        Map<String, Parameter> all = BlockPaths.parameters(block);
        all.values().forEach(p -> p.freeze(false));
        long count = all.values().stream().mapToLong(p -> p.getShape().size()).sum();
        return new TrainableModel() {
            @Override
            public Block block() {
                return block;
            }

            @Override
            public Map<String, Parameter> trainableParameters() {
                return all;
            }

            @Override
            public void save(Path dir) throws IOException {
                saver.save(dir);
            }

            @Override
            public String describe() {
                return String.format(Locale.ROOT, "full fine-tuning of %,d parameters", count);
            }
        };
    }
}
