package org.peft4j.cli.quickstart;

import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.Trainer;
import ai.djl.training.loss.Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;

import org.peft4j.core.io.NativeArrays;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.lora.LoRAModel;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Locale;

/**
 * LoRA end to end on a small network: pretrain it on task A, adapt it with LoRA to task B (task A
 * with a low-rank change), save the adapter, load it onto a fresh copy of the base network, merge.
 *
 * <p>The network is {@code 16 -> 128 -> tanh -> 128 -> tanh -> 16}; its block paths are {@code 0},
 * {@code 2} and {@code 4} for the three Linear layers (DJL's {@code SequentialBlock} children are
 * named by position, as PyTorch's {@code nn.Sequential} names them).
 */
public final class LoRAQuickstart {

    private static final int WIDTH = 16;
    private static final int HIDDEN = 128;
    private static final int BATCH = 256;

    private final PrintStream out;

    /**
     * Creates the example.
     *
     * @param out where progress is printed
     */
    public LoRAQuickstart(PrintStream out) {
        this.out = out;
    }

    /** What the run measured. */
    public record Result(
            float baseLossOnB, float adaptedLossOnB, long trainableParameters, float reloadDiff) {}

    /**
     * Runs the example.
     *
     * @param adapterDir where the adapter is saved
     * @param seed the random seed
     * @return the losses and checks
     * @throws IOException if the adapter cannot be written or read
     */
    public Result run(Path adapterDir, int seed) throws IOException {
        try (NDManager manager = NDManager.newBaseManager()) {
            Engine.getInstance().setRandomSeed(seed);
            SequentialBlock teacherA = network(manager);
            SequentialBlock teacherB = network(manager);
            copy(teacherA, teacherB);
            lowRankChange(teacherB, manager);

            SequentialBlock base = network(manager);
            float lossA = fit(base, teacherA, manager, 400, 3e-3f);
            out.printf(Locale.ROOT, "pretrained the base network on task A: loss %.5f%n", lossA);
            SequentialBlock copyOfBase = network(manager);
            copy(base, copyOfBase);

            // 1. Describe the adapter.
            LoRAConfig config =
                    LoRAConfig.builder()
                            .setTargetModules("0", "2", "4")
                            .optR(4)
                            .optLoraAlpha(8)
                            .optMergeWeights(true)
                            .build();
            // 2. Wrap the model: the three Linear layers become LoRALinear layers.
            LoRAModel model = new LoRAModel(base, config);
            // 3. Train only LoRA's A and B.
            model.markOnlyLoRAAsTrainable();
            model.printTrainableParameters();
            float before = loss(model, teacherB, manager);
            float after = fit(model, teacherB, manager, 300, 1e-2f);
            out.printf(Locale.ROOT, "task B loss: base %.5f, LoRA-adapted %.5f%n", before, after);
            // 4. Save the adapter (Hugging Face PEFT format).
            model.savePretrained(adapterDir);
            out.println("saved the adapter to " + adapterDir);
            // 5. Load it onto another copy of the base model; eval() merges (merge_weights).
            LoRAModel loaded = LoRAModel.fromPretrained(copyOfBase, adapterDir);
            NDArray x = manager.randomNormal(new Shape(8, WIDTH));
            float diff = maxDiff(forward(model, x, manager), forward(loaded, x, manager));
            loaded.eval();
            float mergedDiff = maxDiff(forward(model, x, manager), forward(loaded, x, manager));
            Block plain = loaded.mergeAndUnload();
            out.printf(
                    Locale.ROOT,
                    "reloaded adapter: max output difference %.2g; merged: %.2g; unloaded: %s%n",
                    diff,
                    mergedDiff,
                    plain.getClass().getSimpleName());
            return new Result(before, after, model.countTrainableParameters(), diff);
        }
    }

    /**
     * Builds the example's network, {@code 16 -> 128 -> tanh -> 128 -> tanh -> 16}, initialised
     * from the engine's random generator: its Linear layers are the blocks {@code 0}, {@code 2} and
     * {@code 4}.
     *
     * @param manager the manager that owns the weights
     * @return the initialised network
     */
    public static SequentialBlock network(NDManager manager) {
        SequentialBlock block =
                new SequentialBlock()
                        .add(Linear.builder().setUnits(HIDDEN).build())
                        .add(Activation.tanhBlock())
                        .add(Linear.builder().setUnits(HIDDEN).build())
                        .add(Activation.tanhBlock())
                        .add(Linear.builder().setUnits(WIDTH).build());
        block.initialize(manager, DataType.FLOAT32, new Shape(1, WIDTH));
        return block;
    }

    /**
     * Copies every parameter of one block into the same-named parameter of a block of the same
     * structure, so that two instances start from the same weights.
     *
     * @param from the block whose values are copied
     * @param to the block that receives them
     */
    public static void copy(Block from, Block to) {
        var target = to.getParameters();
        from.getParameters()
                .forEach(
                        pair ->
                                NativeArrays.copyInto(
                                        target.get(pair.getKey()).getArray(),
                                        pair.getValue().getArray()));
    }

    /** Task B: the middle layer of task A's teacher plus a rank-2 change. */
    private static void lowRankChange(SequentialBlock teacher, NDManager manager) {
        NDArray w =
                teacher.getChildren().get(2).getValue().getParameters().get("weight").getArray();
        NDArray u = manager.randomNormal(new Shape(HIDDEN, 2));
        NDArray v = manager.randomNormal(new Shape(2, HIDDEN));
        w.addi(u.matMul(v).muli(0.15f));
    }

    private static NDArray forward(Block block, NDArray x, NDManager manager) {
        return block.forward(new ParameterStore(manager, false), new NDList(x), false)
                .singletonOrThrow();
    }

    private static float maxDiff(NDArray a, NDArray b) {
        return a.sub(b).abs().max().getFloat();
    }

    private static float loss(Block student, Block teacher, NDManager manager) {
        try (NDManager scope = manager.newSubManager()) {
            NDArray x = scope.randomNormal(new Shape(4 * BATCH, WIDTH));
            NDArray diff = forward(student, x, scope).sub(forward(teacher, x, scope));
            return diff.square().mean().getFloat();
        }
    }

    private float fit(Block student, Block teacher, NDManager manager, int steps, float lr) {
        try (Model holder = Model.newInstance("quickstart")) {
            holder.setBlock(student);
            DefaultTrainingConfig config =
                    new DefaultTrainingConfig(Loss.l2Loss())
                            .optOptimizer(
                                    Optimizer.adam()
                                            .optLearningRateTracker(Tracker.fixed(lr))
                                            .build());
            try (Trainer trainer = holder.newTrainer(config)) {
                trainer.initialize(new Shape(BATCH, WIDTH));
                for (int step = 0; step < steps; step++) {
                    try (NDManager scope = manager.newSubManager()) {
                        NDArray x = scope.randomNormal(new Shape(BATCH, WIDTH));
                        NDArray y = forward(teacher, x, scope);
                        try (GradientCollector collector = trainer.newGradientCollector()) {
                            NDArray prediction = trainer.forward(new NDList(x)).singletonOrThrow();
                            NDArray loss =
                                    trainer.getLoss()
                                            .evaluate(new NDList(y), new NDList(prediction));
                            collector.backward(loss);
                        }
                        trainer.step();
                    }
                }
            }
        }
        return loss(student, teacher, manager);
    }
}
