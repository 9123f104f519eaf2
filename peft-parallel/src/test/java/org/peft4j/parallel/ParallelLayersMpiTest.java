package org.peft4j.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.peft4j.core.testing.ArrayAssertions.assertAllClose;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;
import static org.peft4j.core.testing.ArrayAssertions.gamma;
import static org.peft4j.core.testing.ArrayAssertions.maxAbs;
import static org.peft4j.parallel.testing.ExactLayers.assertWithinGamma;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.peft4j.core.io.NativeArrays;
import org.peft4j.core.parallel.AxisSharding;
import org.peft4j.lora.LoRALinear;
import org.peft4j.parallel.comm.MpiCommunicator;
import org.peft4j.parallel.testing.ExactLayers;
import org.peft4j.parallel.testing.RandomArrays;

/**
 * Column- and row-parallel layers on two ranks against the full layer computed in the same process:
 * every rank builds the single-process layer from seeded {@link RandomArrays}, takes its part, and
 * compares. Outputs are held to Higham's bound against the layer in float64 ({@link ExactLayers}):
 * within {@code gamma_n sum |terms|} of the exact value, for any split and summation order.
 */
@Tag("mpi")
class ParallelLayersMpiTest {

    private static final long I = 12;
    private static final long O = 10;
    private static final int R = 4;
    private static final double SCALING = 2.0;

    /** Products of the input features and the bias. */
    private static final int LINEAR_TERMS = (int) I + 1;

    /**
     * A LoRA layer: the base product, the branch's two products (I and R terms) and its addition;
     * merging adds B A to the weight (R terms and the sum) and unmerging takes it off again.
     */
    private static final int LORA_TERMS = LINEAR_TERMS + (int) I + R + 1 + 2 * (R + 1);

    private final TensorParallel group = TensorParallel.of(MpiCommunicator.world());
    private NDManager manager;
    private ParameterStore ps;

    @BeforeEach
    void open() {
        assertEquals(2, group.getDegree(), "run with mpirun -np 2");
        manager = NDManager.newBaseManager();
        ps = new ParameterStore(manager, false);
    }

    @AfterEach
    void close() {
        manager.close();
    }

    private NDArray random(long seed, long... shape) {
        return RandomArrays.gaussian(manager, seed, 1, shape);
    }

    /** Rank k's part of a tensor split evenly along an axis. */
    private NDArray part(NDArray full, int axis) {
        return new AxisSharding(group, axis).localPart(full);
    }

    private static Linear full(NDArray w, NDArray b, NDManager manager) {
        Linear linear = Linear.builder().setUnits(w.getShape().get(0)).optBias(b != null).build();
        linear.initialize(manager, DataType.FLOAT32, new Shape(1, w.getShape().get(1)));
        NativeArrays.copyInto(linear.getParameters().get("weight").getArray(), w);
        if (b != null) {
            NativeArrays.copyInto(linear.getParameters().get("bias").getArray(), b);
        }
        return linear;
    }

    private ColumnParallelLinear column(NDArray w, NDArray b, boolean gather) {
        ColumnParallelLinear layer =
                ColumnParallelLinear.builder()
                        .setGroup(group)
                        .setUnits(w.getShape().get(0))
                        .optBias(b != null)
                        .optGatherOutput(gather)
                        .build();
        layer.initialize(manager, DataType.FLOAT32, new Shape(1, w.getShape().get(1)));
        NativeArrays.copyInto(layer.getParameters().get("weight").getArray(), part(w, 0));
        if (b != null) {
            NativeArrays.copyInto(layer.getParameters().get("bias").getArray(), part(b, 0));
        }
        return layer;
    }

    private RowParallelLinear row(NDArray w, NDArray b) {
        RowParallelLinear layer =
                RowParallelLinear.builder()
                        .setGroup(group)
                        .setUnits(w.getShape().get(0))
                        .optBias(b != null)
                        .build();
        layer.initialize(
                manager, DataType.FLOAT32, new Shape(1, w.getShape().get(1) / group.getDegree()));
        NativeArrays.copyInto(layer.getParameters().get("weight").getArray(), part(w, 1));
        if (b != null) {
            NativeArrays.copyInto(layer.getParameters().get("bias").getArray(), b);
        }
        return layer;
    }

    private NDArray forward(ai.djl.nn.Block block, NDArray x) {
        return block.forward(ps, new NDList(x), false).head();
    }

    @Test
    void columnParallelComputesItsOutputFeatures() {
        NDArray w = random(1, O, I);
        NDArray b = random(2, O);
        NDArray x = random(3, 2, 3, I);
        NDArray[] exact = ExactLayers.linear(x, w, b);
        assertWithinGamma(
                new NDArray[] {part(exact[0], 2), part(exact[1], 2)},
                forward(column(w, b, false), x),
                LINEAR_TERMS,
                "this rank's output features");
        assertWithinGamma(exact, forward(column(w, b, true), x), LINEAR_TERMS, "gathered");
    }

    @Test
    void rowParallelSumsPartialProductsAndAddsTheBiasOnce() {
        NDArray w = random(4, O, I);
        NDArray b = random(5, O);
        NDArray x = random(6, 2, 3, I);
        // each rank sums half the products, the all-reduce adds the halves, then the bias
        assertWithinGamma(
                ExactLayers.linear(x, w, b),
                forward(row(w, b), part(x, 2)),
                LINEAR_TERMS,
                "row-parallel output");
    }

    /** Builds the full LoRA layer and the parallel one with the same A and B. */
    private LoRALinear[] lora(boolean isColumn, NDArray a, NDArray bb) {
        NDArray w = baseWeight();
        NDArray b = baseBias();
        LoRALinear single =
                LoRALinear.builder(full(w, b, manager)).setR(R).optScaling(SCALING).build();
        NativeArrays.copyInto(single.getLoraA().getArray(), a);
        NativeArrays.copyInto(single.getLoraB().getArray(), bb);
        Linear base = isColumn ? column(w, b, true) : row(w, b);
        LoRALinear parallel = LoRALinear.builder(base).setR(R).optScaling(SCALING).build();
        NativeArrays.copyInto(parallel.getLoraA().getArray(), isColumn ? a : part(a, 1));
        NativeArrays.copyInto(parallel.getLoraB().getArray(), isColumn ? part(bb, 0) : bb);
        return new LoRALinear[] {single, parallel};
    }

    private NDArray baseWeight() {
        return random(7, O, I);
    }

    private NDArray baseBias() {
        return random(8, O);
    }

    @Test
    void columnParallelLoRAMatchesTheFullLayerAndMergesPerShard() {
        NDArray a = random(9, R, I);
        NDArray bb = random(10, O, R);
        LoRALinear[] layers = lora(true, a, bb);
        assertInstanceOf(ColumnParallelLoRALinear.class, layers[1]);
        assertEquals(new Shape(R, I), layers[1].getLoraA().getArray().getShape());
        assertEquals(new Shape(O / 2, R), layers[1].getLoraB().getArray().getShape());
        NDArray x = random(11, 2, 3, I);
        NDArray[] exact = ExactLayers.lora(x, baseWeight(), baseBias(), a, bb, SCALING);
        assertWithinGamma(exact, forward(layers[1], x), LORA_TERMS, "column-parallel LoRA");
        layers[1].merge();
        NDArray[] merged = ExactLayers.merged(baseWeight(), a, bb, SCALING);
        assertWithinGamma(
                new NDArray[] {part(merged[0], 0), part(merged[1], 0)},
                layers[1].getWeight().getArray(),
                R + 1,
                "this rank's rows of W + s B A");
        assertWithinGamma(exact, forward(layers[1], x), LORA_TERMS, "merged");
        layers[1].unmerge();
        assertWithinGamma(exact, forward(layers[1], x), LORA_TERMS, "merged, then unmerged");
    }

    @Test
    void rowParallelLoRAMatchesTheFullLayerAndMergesPerShard() {
        NDArray a = random(12, R, I);
        NDArray bb = random(13, O, R);
        LoRALinear[] layers = lora(false, a, bb);
        assertInstanceOf(RowParallelLoRALinear.class, layers[1]);
        assertEquals(new Shape(R, I / 2), layers[1].getLoraA().getArray().getShape());
        assertEquals(new Shape(O, R), layers[1].getLoraB().getArray().getShape());
        NDArray x = random(14, 2, 3, I);
        NDArray[] exact = ExactLayers.lora(x, baseWeight(), baseBias(), a, bb, SCALING);
        assertWithinGamma(exact, forward(layers[1], part(x, 2)), LORA_TERMS, "row-parallel LoRA");
        layers[1].merge();
        NDArray[] merged = ExactLayers.merged(baseWeight(), a, bb, SCALING);
        assertWithinGamma(
                new NDArray[] {part(merged[0], 1), part(merged[1], 1)},
                layers[1].getWeight().getArray(),
                R + 1,
                "this rank's columns of W + s B A");
        assertWithinGamma(exact, forward(layers[1], part(x, 2)), LORA_TERMS, "merged");
    }

    @Test
    void replicatedAdapterHalvesStartEqualOnEveryRank() {
        manager.getEngine().setRandomSeed(100 + group.getRank()); // different draws per rank
        LoRALinear columnLora =
                LoRALinear.builder(column(random(15, O, I), null, false)).setR(R).build();
        NDArray a = group.getCommunicator().allGather(columnLora.getLoraA().getArray(), 0);
        assertSameBits(
                a.get(new NDIndex("0:{}", R)),
                a.get(new NDIndex("{}:", R)),
                "a replicated A is drawn from one stream on every rank");
        LoRALinear rowLora =
                LoRALinear.builder(row(random(16, O, I), null))
                        .setR(R)
                        .optInit(org.peft4j.lora.LoRAInit.RANDOM)
                        .build();
        NDArray b = group.getCommunicator().allGather(rowLora.getLoraB().getArray(), 0);
        assertSameBits(
                b.get(new NDIndex("0:{}", O)),
                b.get(new NDIndex("{}:", O)),
                "a replicated B is drawn from one stream on every rank");
        // A of a row-parallel layer is drawn with the full fan-in I: |A| <= 1/sqrt(I)
        float bound = (float) (1 / Math.sqrt(I));
        float max = rowLora.getLoraA().getArray().abs().max().getFloat();
        assertEquals(true, max <= bound, "max |A| " + max + " above 1/sqrt(I) = " + bound);
    }

    @Test
    void gradientsOfEachRanksPartsAreTheFullLayersSlices() {
        NDArray a = random(17, R, I);
        NDArray bb = random(18, O, R);
        NDArray x = random(19, 2, 3, I);
        for (boolean isColumn : new boolean[] {true, false}) {
            LoRALinear[] layers = lora(isColumn, a, bb);
            for (LoRALinear layer : layers) {
                layer.getWeight().freeze(false);
            }
            NDArray[] grads = new NDArray[4];
            NDArray target = random(20, 2, 3, O);
            for (int i = 0; i < 2; i++) {
                NDArray input = i == 0 || isColumn ? x : part(x, 2);
                ParameterStore training = new ParameterStore(manager, false);
                try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                    NDArray y = layers[i].forward(training, new NDList(input), true).head();
                    collector.backward(y.mul(target).sum());
                }
                grads[2 * i] = layers[i].getLoraA().getArray().getGradient().duplicate();
                grads[2 * i + 1] = layers[i].getWeight().getArray().getGradient().duplicate();
            }
            // dA = s (B^T dy) x and dW = dy x summed over the 6 positions, after the O terms of
            // B^T dy: gamma_n of each tensor's largest gradient
            double g = gamma(O + R + 6 + 2);
            String kind = isColumn ? "column" : "row";
            if (isColumn) {
                // A is replicated: each rank holds its share of dA, summed across ranks
                group.getCommunicator().allReduceSum(grads[2]);
                assertAllClose(grads[0], grads[2], g, g * maxAbs(grads[0]), kind + " dA");
                NDArray dw = part(grads[1], 0);
                assertAllClose(dw, grads[3], g, g * maxAbs(grads[1]), kind + " dW");
            } else {
                NDArray da = part(grads[0], 1);
                assertAllClose(da, grads[2], g, g * maxAbs(grads[0]), kind + " dA");
                NDArray dw = part(grads[1], 1);
                assertAllClose(dw, grads[3], g, g * maxAbs(grads[1]), kind + " dW");
            }
        }
    }
}
