package org.peft4j.core.tree;

import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Block;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A composite block whose children sit in typed {@link Slot}s, so that a child can be replaced (by
 * a LoRA layer, say) and the forward pass, which calls {@code slot.get()}, uses the new one.
 *
 * <pre>{@code
 * private final Slot<Linear> qProj = addSlot("q_proj", Linear.class, Linear.builder()...build());
 * ...
 * NDArray q = qProj.get().forward(parameterStore, new NDList(x), training).head();
 * }</pre>
 */
public abstract class ReplaceableBlock extends AbstractBlock implements ChildReplaceable {

    private final Map<String, Slot<?>> slots = new LinkedHashMap<>();

    /**
     * Creates the block.
     *
     * @param version the block's serialisation version
     */
    protected ReplaceableBlock(byte version) {
        super(version);
    }

    /**
     * Adds a child in a typed slot.
     *
     * @param name the child's name, its logical path segment
     * @param type what any replacement must be an instance of
     * @param block the child
     * @param <B> the slot's type
     * @return the slot, through which the forward pass calls the child
     */
    protected final <B extends Block> Slot<B> addSlot(String name, Class<B> type, B block) {
        Slot<B> slot = new Slot<>(name, type, children.size(), block);
        addChildBlock(name, block);
        slots.put(name, slot);
        return slot;
    }

    /** {@inheritDoc} */
    @Override
    public final void replaceChild(String segment, Block replacement) {
        Slot<?> slot = slots.get(segment);
        if (slot == null) {
            throw new IllegalArgumentException(
                    getClass().getSimpleName() + " has no child \"" + segment + '"');
        }
        slot.set(replacement);
        children.values().set(slot.index, replacement);
    }

    /**
     * A child reference that replacement can retarget.
     *
     * @param <B> the type every occupant must have
     */
    public static final class Slot<B extends Block> {

        private final String name;
        private final Class<B> type;
        private final int index;
        private B block;

        Slot(String name, Class<B> type, int index, B block) {
            this.name = name;
            this.type = type;
            this.index = index;
            this.block = block;
        }

        /**
         * Returns the current child.
         *
         * @return the block in the slot
         */
        public B get() {
            return block;
        }

        private void set(Block replacement) {
            if (!type.isInstance(replacement)) {
                throw new IllegalArgumentException(
                        "child \""
                                + name
                                + "\" must be a "
                                + type.getName()
                                + ", not a "
                                + replacement.getClass().getName());
            }
            block = type.cast(replacement);
        }
    }
}
