package org.peft4j.core.tree;

import ai.djl.nn.AbstractBaseBlock;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Block;
import ai.djl.nn.BlockList;
import ai.djl.nn.ParallelBlock;
import ai.djl.nn.SequentialBlock;

import java.lang.reflect.Field;
import java.lang.reflect.InaccessibleObjectException;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Swaps one block of a tree for another so that the parent's forward pass calls the new block.
 *
 * <p>DJL's {@code getChildren()} returns a copy, and most composites call their children through
 * typed private fields rather than that list ({@code ScaledDotProductAttentionBlock} calls its
 * {@code Linear} projections directly), so replacing a child takes two edits: the entry of the
 * parent's children list (which parameter listing, initialisation and saving walk) and every
 * reference the forward pass follows. In order of preference:
 *
 * <ol>
 *   <li>a parent implementing {@link ChildReplaceable} does both itself;
 *   <li>otherwise the children list is edited, and every field of the parent that holds the old
 *       child (directly, in a {@code List} or in an array) is pointed at the new one; a field whose
 *       declared type cannot hold the replacement is an error;
 *   <li>a parent with no such field is accepted only when its forward pass is known to walk the
 *       children list ({@link SequentialBlock}, {@link ParallelBlock}); anything else is an error
 *       naming the path, because a silent no-op would train an adapter that the model never calls.
 * </ol>
 */
public final class BlockReplacer {

    private BlockReplacer() {}

    /**
     * Replaces the block at a logical path.
     *
     * @param root the root of the tree
     * @param path the dotted path of the block to replace; not the root
     * @param replacement the new block
     * @return the block that was replaced
     * @throws IllegalArgumentException if the path does not exist or the parent cannot take the
     *     replacement; the message names the path and the reason
     */
    public static Block replace(Block root, String path, Block replacement) {
        if (path.isEmpty()) {
            throw new IllegalArgumentException("the root block cannot be replaced inside its tree");
        }
        int dot = path.lastIndexOf('.');
        String parentPath = dot < 0 ? "" : path.substring(0, dot);
        String segment = path.substring(dot + 1);
        Map<String, Block> blocks = BlockPaths.blocks(root);
        Block parent = blocks.get(parentPath);
        Block old = blocks.get(path);
        if (parent == null || old == null) {
            throw new IllegalArgumentException("no block at path \"" + path + "\"");
        }
        if (parent instanceof ChildReplaceable) {
            ((ChildReplaceable) parent).replaceChild(segment, replacement);
            return old;
        }
        BlockPaths.Child child =
                BlockPaths.children(parent).stream()
                        .filter(c -> c.segment().equals(segment))
                        .findFirst()
                        .orElseThrow();
        if (!(parent instanceof AbstractBlock)) {
            throw cannotReplace(path, parent, "it is not an AbstractBlock");
        }
        List<Runnable> edits = fieldEdits(path, parent, old, replacement);
        boolean walksChildren =
                parent instanceof SequentialBlock || parent instanceof ParallelBlock;
        if (edits.isEmpty() && !walksChildren) {
            throw cannotReplace(
                    path,
                    parent,
                    "it holds the child in no field peft4j can rewrite; implement "
                            + ChildReplaceable.class.getName()
                            + " in "
                            + parent.getClass().getSimpleName());
        }
        BlockList children = childrenOf(path, (AbstractBlock) parent);
        edits.forEach(Runnable::run);
        children.values().set(child.index(), replacement);
        return old;
    }

    /** Finds every reference to {@code old} in the parent's fields; applies nothing yet. */
    private static List<Runnable> fieldEdits(
            String path, Block parent, Block old, Block replacement) {
        List<Runnable> edits = new ArrayList<>();
        for (Class<?> type = parent.getClass();
                type != AbstractBlock.class && type != AbstractBaseBlock.class && type != null;
                type = type.getSuperclass()) {
            for (Field field : type.getDeclaredFields()) {
                if (!Modifier.isStatic(field.getModifiers()) && !field.getType().isPrimitive()) {
                    addFieldEdits(path, parent, field, old, replacement, edits);
                }
            }
        }
        return edits;
    }

    @SuppressWarnings("unchecked")
    private static void addFieldEdits(
            String path,
            Block parent,
            Field field,
            Block old,
            Block replacement,
            List<Runnable> edits) {
        Object value = read(path, parent, field);
        if (value == old) {
            if (!field.getType().isInstance(replacement)) {
                throw cannotReplace(
                        path,
                        parent,
                        "its field "
                                + field.getName()
                                + " is declared as "
                                + field.getType().getName()
                                + ", which a "
                                + replacement.getClass().getName()
                                + " cannot be assigned to");
            }
            edits.add(() -> write(path, parent, field, replacement));
        } else if (value instanceof List && !(value instanceof BlockList)) {
            List<Object> list = (List<Object>) value;
            for (int i = 0; i < list.size(); i++) {
                if (list.get(i) == old) {
                    int index = i;
                    edits.add(() -> setListElement(path, parent, field, list, index, replacement));
                }
            }
        } else if (value instanceof Object[]) {
            Object[] array = (Object[]) value;
            for (int i = 0; i < array.length; i++) {
                if (array[i] == old) {
                    if (!array.getClass().getComponentType().isInstance(replacement)) {
                        throw cannotReplace(
                                path,
                                parent,
                                "its array field "
                                        + field.getName()
                                        + " cannot hold the new block");
                    }
                    int index = i;
                    edits.add(() -> array[index] = replacement);
                }
            }
        }
    }

    private static void setListElement(
            String path, Block parent, Field field, List<Object> list, int index, Block value) {
        try {
            list.set(index, value);
        } catch (UnsupportedOperationException | ClassCastException e) {
            throw cannotReplace(path, parent, "its list field " + field.getName() + " is fixed");
        }
    }

    private static Object read(String path, Block parent, Field field) {
        try {
            field.setAccessible(true);
            return field.get(parent);
        } catch (InaccessibleObjectException | IllegalAccessException e) {
            throw cannotReplace(path, parent, inaccessible(field));
        }
    }

    private static void write(String path, Block parent, Field field, Block replacement) {
        try {
            field.set(parent, replacement);
        } catch (IllegalAccessException e) {
            throw cannotReplace(path, parent, inaccessible(field));
        }
    }

    private static String inaccessible(Field field) {
        return "its field "
                + field.getName()
                + " cannot be accessed; when running on the module path, open "
                + field.getDeclaringClass().getPackageName()
                + " to peft4j (--add-opens)";
    }

    private static IllegalArgumentException cannotReplace(String path, Block parent, String why) {
        return new IllegalArgumentException(
                "cannot replace the block at \""
                        + path
                        + "\" inside "
                        + parent.getClass().getName()
                        + ": "
                        + why);
    }

    private static BlockList childrenOf(String path, AbstractBlock parent) {
        try {
            Field field = AbstractBlock.class.getDeclaredField("children");
            field.setAccessible(true);
            return (BlockList) field.get(parent);
        } catch (NoSuchFieldException e) {
            throw cannotReplace(path, parent, "this DJL version has no AbstractBlock.children");
        } catch (InaccessibleObjectException | IllegalAccessException e) {
            throw cannotReplace(
                    path,
                    parent,
                    "AbstractBlock.children cannot be accessed; when running on the module path,"
                            + " open ai.djl.nn to peft4j (--add-opens)");
        }
    }
}
