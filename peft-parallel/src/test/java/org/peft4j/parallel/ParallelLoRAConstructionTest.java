package org.peft4j.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.util.PairList;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.peft4j.core.io.NativeArrays;
import org.peft4j.core.parallel.AxisSharding;
import org.peft4j.core.parallel.Sharding;
import org.peft4j.lora.LoRAInit;
import org.peft4j.lora.LoRALinear;
import org.peft4j.parallel.testing.RandomArrays;
import org.peft4j.parallel.testing.RecordingCommunicator;

import java.util.ArrayList;
import java.util.List;

/**
 * How the column- and row-parallel LoRA layers come to be, on a pretend group of two ranks run one
 * after the other in this process: their constructors draw nothing, communicate nothing and call
 * no method a subclass overrides; the factory ({@link LoRALinear.Builder#build()} through {@code
 * adapt}) draws the single-process adapter of the same seed, cuts the split matrix, and broadcasts
 * the whole one from rank 0 exactly once.
 */
class ParallelLoRAConstructionTest {

    private static final long O = 6;
    private static final long I = 8;
    private static final int R = 2;
    private static final int SEED = 1234;
    private static final String SAME_DRAW =
            "the whole matrix is drawn as one process draws it, from the same seed";
    private static final String SAME_DRAW_CUT =
            "the split matrix is the one process's draw, cut (Sharding.drawWholeKeepPart)";

    private NDManager manager;
    private NDArray w;

    @BeforeEach
    void open() {
        manager = NDManager.newBaseManager();
        w = RandomArrays.gaussian(manager, 1, 1, O, I);
    }

    @AfterEach
    void close() {
        manager.close();
    }

    private ColumnParallelLinear column(RecordingCommunicator rank, boolean withWeight) {
        TensorParallel group = TensorParallel.of(rank);
        ColumnParallelLinear layer =
                ColumnParallelLinear.builder().setGroup(group).setUnits(O).optBias(false).build();
        if (withWeight) {
            layer.initialize(manager, DataType.FLOAT32, new Shape(1, I));
            NativeArrays.copyInto(
                    layer.getParameters().get("weight").getArray(),
                    new AxisSharding(group, 0).localPart(w));
        }
        rank.clear();
        return layer;
    }

    private RowParallelLinear row(RecordingCommunicator rank, boolean withWeight) {
        TensorParallel group = TensorParallel.of(rank);
        RowParallelLinear layer =
                RowParallelLinear.builder().setGroup(group).setUnits(O).optBias(false).build();
        if (withWeight) {
            layer.initialize(manager, DataType.FLOAT32, new Shape(1, I / 2));
            NativeArrays.copyInto(
                    layer.getParameters().get("weight").getArray(),
                    new AxisSharding(group, 1).localPart(w));
        }
        rank.clear();
        return layer;
    }

    private static LoRALinear.Builder settings(Linear base) {
        return LoRALinear.builder(base).setR(R).optInit(LoRAInit.RANDOM);
    }

    /** The adapter one process draws from {@link #SEED} around the full layer: {A, B}. */
    private NDArray[] singleProcessAdapter() {
        Linear full = Linear.builder().setUnits(O).optBias(false).build(); // before the seed
        full.initialize(manager, DataType.FLOAT32, new Shape(1, I));
        NativeArrays.copyInto(full.getParameters().get("weight").getArray(), w);
        Engine.getInstance().setRandomSeed(SEED);
        LoRALinear single = settings(full).build();
        return new NDArray[] {single.getLoraA().getArray(), single.getLoraB().getArray()};
    }

    @Test
    void constructorsNeitherDrawNorCommunicate() {
        for (RecordingCommunicator rank : RecordingCommunicator.group(2)) {
            ColumnParallelLinear columnBase = column(rank, true);
            ColumnParallelLoRALinear columnLora =
                    new ColumnParallelLoRALinear(settings(columnBase), columnBase);
            assertEquals(List.of(), rank.calls(), "collectives in the column layer's constructor");
            assertFalse(columnLora.getLoraA().isInitialized(), "A drawn in the constructor");
            assertFalse(columnLora.getLoraB().isInitialized(), "B drawn in the constructor");

            RowParallelLinear rowBase = row(rank, true);
            RowParallelLoRALinear rowLora = new RowParallelLoRALinear(settings(rowBase), rowBase);
            assertEquals(List.of(), rank.calls(), "collectives in the row layer's constructor");
            assertFalse(rowLora.getLoraA().isInitialized(), "A drawn in the constructor");
            assertFalse(rowLora.getLoraB().isInitialized(), "B drawn in the constructor");
        }
    }

    @Test
    void constructorsCallNoMethodASubclassOverrides() {
        RecordingCommunicator rank = RecordingCommunicator.group(2)[0];
        ColumnParallelLinear columnBase = column(rank, true);
        ColumnProbe columnProbe = new ColumnProbe(settings(columnBase), columnBase);
        assertEquals(List.of(), columnProbe.calledTooEarly, "called before the subclass was set");
        RowParallelLinear rowBase = row(rank, true);
        RowProbe rowProbe = new RowProbe(settings(rowBase), rowBase);
        assertEquals(List.of(), rowProbe.calledTooEarly, "called before the subclass was set");
        // once constructed, the layer is finished as the factory does it, the overrides in place
        columnProbe.finish();
        rowProbe.finish();
        assertTrue(columnProbe.getLoraA().isInitialized() && rowProbe.getLoraB().isInitialized());
    }

    @Test
    void factoryDrawsTheSingleProcessAdapterCutAndBroadcastsTheWholeMatrixOnce() {
        NDArray[] single = singleProcessAdapter();
        RecordingCommunicator[] ranks = RecordingCommunicator.group(2);
        for (RecordingCommunicator rank : ranks) {
            TensorParallel group = TensorParallel.of(rank);
            ColumnParallelLinear columnBase = column(rank, true); // drawn before the seed is set
            Engine.getInstance().setRandomSeed(SEED);
            LoRALinear columnLora = settings(columnBase).build();
            assertInstanceOf(ColumnParallelLoRALinear.class, columnLora);
            assertEquals(List.of("broadcast (2, 8) from 0"), rank.calls(), "A, once");
            assertSameBits(single[0], columnLora.getLoraA().getArray(), SAME_DRAW);
            assertSameBits(
                    new AxisSharding(group, 0).localPart(single[1]),
                    columnLora.getLoraB().getArray(),
                    SAME_DRAW_CUT);

            RowParallelLinear rowBase = row(rank, true);
            Engine.getInstance().setRandomSeed(SEED);
            LoRALinear rowLora = settings(rowBase).build();
            assertInstanceOf(RowParallelLoRALinear.class, rowLora);
            assertEquals(List.of("broadcast (6, 2) from 0"), rank.calls(), "B, once");
            assertSameBits(
                    new AxisSharding(group, 1).localPart(single[0]),
                    rowLora.getLoraA().getArray(),
                    SAME_DRAW_CUT);
            assertSameBits(single[1], rowLora.getLoraB().getArray(), SAME_DRAW);
        }
    }

    @Test
    void theWholeMatrixIsRankZerosEvenWhereTheDrawsDiffer() {
        RecordingCommunicator[] ranks = RecordingCommunicator.group(2);
        NDArray[] a = new NDArray[2];
        NDArray[] b = new NDArray[2];
        for (RecordingCommunicator rank : ranks) {
            Engine.getInstance().setRandomSeed(100 + rank.getRank()); // other numbers per rank
            a[rank.getRank()] = settings(column(rank, true)).build().getLoraA().getArray();
            b[rank.getRank()] = settings(row(rank, true)).build().getLoraB().getArray();
        }
        assertSameBits(a[0], a[1], "A of a column-parallel layer is rank 0's, broadcast");
        assertSameBits(b[0], b[1], "B of a row-parallel layer is rank 0's, broadcast");
        // the seeds do differ: rank 1's own draw, had nobody sent it rank 0's, is another
        Engine.getInstance().setRandomSeed(101);
        RecordingCommunicator alone = RecordingCommunicator.group(2)[0];
        NDArray own = settings(column(alone, true)).build().getLoraA().getArray();
        assertNotEquals(a[0].getFloat(0, 0), own.getFloat(0, 0), "rank 1's own draw");
    }

    @Test
    void aLayerWithoutWeightsBroadcastsWhenItIsInitialised() {
        RecordingCommunicator rank = RecordingCommunicator.group(2)[0];
        LoRALinear columnLora = settings(column(rank, false)).build();
        assertEquals(List.of(), rank.calls(), "nothing to broadcast before the weight exists");
        assertFalse(columnLora.getLoraA().isInitialized());
        columnLora.initialize(manager, DataType.FLOAT32, new Shape(1, I));
        assertEquals(List.of("broadcast (2, 8) from 0"), rank.calls());

        rank.clear();
        LoRALinear rowLora = settings(row(rank, false)).build();
        assertEquals(List.of(), rank.calls(), "nothing to broadcast before the weight exists");
        rowLora.initialize(manager, DataType.FLOAT32, new Shape(1, I / 2));
        assertEquals(List.of("broadcast (6, 2) from 0"), rank.calls());
    }

    /**
     * Records the overridable methods a superclass constructor calls: they run before this class's
     * constructor has set {@code calledTooEarly}, and find it null.
     */
    private static final class ColumnProbe extends ColumnParallelLoRALinear {

        private static final List<String> EARLY = new ArrayList<>();
        private final List<String> calledTooEarly;

        ColumnProbe(LoRALinear.Builder builder, ColumnParallelLinear base) {
            super(builder, base);
            calledTooEarly = new ArrayList<>(EARLY);
            EARLY.clear();
        }

        void finish() {
            initializeAcrossGroup();
        }

        private void seen(String method) {
            if (calledTooEarly == null) {
                EARLY.add(method);
            }
        }

        @Override
        protected void beforeInitialize(Shape... inputShapes) {
            seen("beforeInitialize");
            super.beforeInitialize(inputShapes);
        }

        @Override
        public void prepare(Shape[] inputShapes) {
            seen("prepare");
            super.prepare(inputShapes);
        }

        @Override
        public void initialize(NDManager manager, DataType dataType, Shape... inputShapes) {
            seen("initialize");
            super.initialize(manager, dataType, inputShapes);
        }

        @Override
        public PairList<String, Shape> describeInput() {
            seen("describeInput");
            return super.describeInput();
        }

        @Override
        public Shape[] getOutputShapes(Shape[] inputs) {
            seen("getOutputShapes");
            return super.getOutputShapes(inputs);
        }

        @Override
        public Parameter getLoraA() {
            seen("getLoraA");
            return super.getLoraA();
        }

        @Override
        public Parameter getLoraB() {
            seen("getLoraB");
            return super.getLoraB();
        }

        @Override
        public Parameter getWeight() {
            seen("getWeight");
            return super.getWeight();
        }

        @Override
        public Linear getBaseLayer() {
            seen("getBaseLayer");
            return super.getBaseLayer();
        }

        @Override
        public TensorParallel getGroup() {
            seen("getGroup");
            return super.getGroup();
        }

        @Override
        public Sharding getSharding(Parameter parameter) {
            seen("getSharding");
            return super.getSharding(parameter);
        }

        @Override
        public boolean isInitialized() {
            seen("isInitialized");
            return super.isInitialized();
        }
    }

    /** The probe of {@link ColumnProbe} for the row-parallel layer. */
    private static final class RowProbe extends RowParallelLoRALinear {

        private static final List<String> EARLY = new ArrayList<>();
        private final List<String> calledTooEarly;

        RowProbe(LoRALinear.Builder builder, RowParallelLinear base) {
            super(builder, base);
            calledTooEarly = new ArrayList<>(EARLY);
            EARLY.clear();
        }

        void finish() {
            initializeAcrossGroup();
        }

        private void seen(String method) {
            if (calledTooEarly == null) {
                EARLY.add(method);
            }
        }

        @Override
        protected void beforeInitialize(Shape... inputShapes) {
            seen("beforeInitialize");
            super.beforeInitialize(inputShapes);
        }

        @Override
        public void prepare(Shape[] inputShapes) {
            seen("prepare");
            super.prepare(inputShapes);
        }

        @Override
        public void initialize(NDManager manager, DataType dataType, Shape... inputShapes) {
            seen("initialize");
            super.initialize(manager, dataType, inputShapes);
        }

        @Override
        public PairList<String, Shape> describeInput() {
            seen("describeInput");
            return super.describeInput();
        }

        @Override
        public Shape[] getOutputShapes(Shape[] inputs) {
            seen("getOutputShapes");
            return super.getOutputShapes(inputs);
        }

        @Override
        public Parameter getLoraA() {
            seen("getLoraA");
            return super.getLoraA();
        }

        @Override
        public Parameter getLoraB() {
            seen("getLoraB");
            return super.getLoraB();
        }

        @Override
        public Parameter getWeight() {
            seen("getWeight");
            return super.getWeight();
        }

        @Override
        public Linear getBaseLayer() {
            seen("getBaseLayer");
            return super.getBaseLayer();
        }

        @Override
        public TensorParallel getGroup() {
            seen("getGroup");
            return super.getGroup();
        }

        @Override
        public Sharding getSharding(Parameter parameter) {
            seen("getSharding");
            return super.getSharding(parameter);
        }

        @Override
        public boolean isInitialized() {
            seen("isInitialized");
            return super.isInitialized();
        }
    }
}
