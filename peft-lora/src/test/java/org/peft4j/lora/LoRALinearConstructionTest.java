package org.peft4j.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.util.PairList;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

/**
 * LoRALinear's constructor only declares the adapter: it calls no method a subclass overrides
 * (such a call runs before the subclass's fields are set), and {@code A} and {@code B} are drawn
 * afterwards, by the builder, exactly as before.
 */
class LoRALinearConstructionTest {

    private static final String SAME_DRAW = "the same seed draws the same adapter";

    private NDManager manager;

    @BeforeEach
    void open() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void close() {
        manager.close();
    }

    private Linear base() {
        Linear linear = Linear.builder().setUnits(6).build();
        linear.initialize(manager, DataType.FLOAT32, new Shape(1, 4));
        return linear;
    }

    @Test
    void constructorCallsNoMethodASubclassOverrides() {
        Probe probe = new Probe(LoRALinear.builder(base()).setR(2));
        assertEquals(List.of(), probe.calledTooEarly, "called before the subclass was set");
        assertFalse(probe.getLoraA().isInitialized(), "A drawn in the constructor");
        assertFalse(probe.getLoraB().isInitialized(), "B drawn in the constructor");
        probe.initializeAdapterFromBase();
        assertTrue(probe.getLoraA().isInitialized() && probe.getLoraB().isInitialized());
    }

    @Test
    void builderDrawsAfterConstructionWhatTheConstructorUsedToDraw() {
        Linear base = base();
        Engine.getInstance().setRandomSeed(42);
        LoRALinear built = LoRALinear.builder(base).setR(2).optInit(LoRAInit.RANDOM).build();
        assertEquals(new Shape(2, 4), built.getLoraA().getArray().getShape());
        assertEquals(new Shape(6, 2), built.getLoraB().getArray().getShape());

        Linear other = base();
        Engine.getInstance().setRandomSeed(42);
        Probe probe = new Probe(LoRALinear.builder(other).setR(2).optInit(LoRAInit.RANDOM));
        probe.initializeAdapterFromBase();
        assertSameBits(built.getLoraA().getArray(), probe.getLoraA().getArray(), SAME_DRAW);
        assertSameBits(built.getLoraB().getArray(), probe.getLoraB().getArray(), SAME_DRAW);
    }

    @Test
    void aLayerWithoutWeightsGetsItsAdapterWhenInitialised() {
        LoRALinear layer = LoRALinear.builder(Linear.builder().setUnits(6).build()).build();
        assertFalse(layer.getLoraA().isInitialized());
        layer.initialize(manager, DataType.FLOAT32, new Shape(1, 4));
        assertEquals(new Shape(8, 4), layer.getLoraA().getArray().getShape());
        assertEquals(new Shape(6, 8), layer.getLoraB().getArray().getShape());
    }

    /**
     * Records the overridable methods LoRALinear's constructor calls: they run before this class's
     * constructor has set {@code calledTooEarly}, and find it null.
     */
    private static final class Probe extends LoRALinear {

        private static final List<String> EARLY = new ArrayList<>();
        private final List<String> calledTooEarly;

        Probe(LoRALinear.Builder builder) {
            super(builder);
            calledTooEarly = new ArrayList<>(EARLY);
            EARLY.clear();
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
        public Parameter getBias() {
            seen("getBias");
            return super.getBias();
        }

        @Override
        public Linear getBaseLayer() {
            seen("getBaseLayer");
            return super.getBaseLayer();
        }

        @Override
        public int getR() {
            seen("getR");
            return super.getR();
        }

        @Override
        public boolean isInitialized() {
            seen("isInitialized");
            return super.isInitialized();
        }
    }
}
