package org.peft4j.core.io.paddle;

import net.razorvine.pickle.PickleUtils;
import net.razorvine.pickle.Unpickler;

import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * razorvine's unpickler with every opcode that names or calls a global taken over: {@code
 * GLOBAL}, {@code STACK_GLOBAL}, {@code REDUCE} and {@code BUILD} accept only the globals {@code
 * paddle.save} emits for a state dict, and {@code INST}, {@code OBJ}, {@code NEWOBJ}, {@code
 * NEWOBJ_EX}, the extension registry and persistent ids are refused. razorvine's own constructor
 * registry (static, shared by the JVM, and falling back to a generic object for an unknown class)
 * is therefore never reached.
 */
final class RestrictedUnpickler extends Unpickler {

    /** The globals a Paddle state dict pickle holds (numpy 1 and 2 spell the module apart). */
    static final Set<String> ALLOWED =
            Set.of(
                    "numpy.core.multiarray._reconstruct",
                    "numpy._core.multiarray._reconstruct",
                    "numpy.ndarray",
                    "numpy.dtype",
                    "collections.OrderedDict",
                    "_codecs.encode");

    private static final short GLOBAL = 'c';
    private static final short STACK_GLOBAL = 0x93;
    private static final short REDUCE = 'R';
    private static final short BUILD = 'b';
    private static final short INST = 'i';
    private static final short OBJ = 'o';
    private static final short NEWOBJ = 0x81;
    private static final short NEWOBJ_EX = 0x92;
    private static final short EXT1 = 0x82;
    private static final short EXT2 = 0x83;
    private static final short EXT4 = 0x84;
    private static final short PERSID = 'P';
    private static final short BINPERSID = 'Q';

    /** Why a pickle was refused; the reader adds the file's name. */
    static final class Refused extends RuntimeException {

        private static final long serialVersionUID = 1L;

        Refused(String message) {
            super(message);
        }
    }

    /** A global that was named and allowed, not yet called. */
    private static final class Global {
        final String name;

        Global(String name) {
            this.name = name;
        }
    }

    /** numpy's dtype before its state arrives. */
    private static final class Dtype {
        final char kind;
        final int itemSize;
        ByteOrder order = ByteOrder.LITTLE_ENDIAN;

        Dtype(char kind, int itemSize) {
            this.kind = kind;
            this.itemSize = itemSize;
        }
    }

    /** An array {@code _reconstruct} made empty; {@code BUILD} gives it its content. */
    static final class PendingArray {
        NumpyArray array;
    }

    @Override
    protected Object dispatch(short key) throws IOException {
        switch (key) {
            case GLOBAL:
                String module = PickleUtils.readline(input);
                String name = PickleUtils.readline(input);
                stack.add(allow(module + '.' + name));
                return NO_RETURN_VALUE;
            case STACK_GLOBAL:
                Object n = stack.pop();
                Object m = stack.pop();
                stack.add(allow(m + "." + n));
                return NO_RETURN_VALUE;
            case REDUCE:
                Object args = stack.pop();
                Object callable = stack.pop();
                stack.add(call(callable, args));
                return NO_RETURN_VALUE;
            case BUILD:
                Object state = stack.pop();
                build(stack.peek(), state);
                return NO_RETURN_VALUE;
            case INST:
            case OBJ:
            case NEWOBJ:
            case NEWOBJ_EX:
                throw new Refused(
                        "the pickle creates a class instance (opcode 0x"
                                + Integer.toHexString(key)
                                + "), which a Paddle state file never does; it was not run");
            case EXT1:
            case EXT2:
            case EXT4:
                throw new Refused("the pickle names a global through the extension registry");
            case PERSID:
            case BINPERSID:
                throw new Refused("the pickle refers to persistent objects outside the file");
            default:
                return super.dispatch(key);
        }
    }

    private static Global allow(String global) {
        if (!ALLOWED.contains(global)) {
            throw new Refused(
                    "the pickle names the global "
                            + global
                            + ", which a Paddle state file does not hold; it was neither imported"
                            + " nor run (allowed: "
                            + ALLOWED
                            + ")");
        }
        return new Global(global);
    }

    private static Object call(Object callable, Object args) {
        if (!(callable instanceof Global)) {
            throw new Refused("the pickle calls a " + kind(callable) + ", not an allowed global");
        }
        String name = ((Global) callable).name;
        Object[] a = args instanceof Object[] ? (Object[]) args : null;
        if (a == null) {
            throw new Refused(name + " is called with " + kind(args) + " instead of a tuple");
        }
        switch (name) {
            case "numpy.core.multiarray._reconstruct":
            case "numpy._core.multiarray._reconstruct":
                if (a.length < 1
                        || !(a[0] instanceof Global)
                        || !"numpy.ndarray".equals(((Global) a[0]).name)) {
                    throw new Refused(name + " is asked to build something other than an ndarray");
                }
                return new PendingArray();
            case "numpy.dtype":
                return dtype(a);
            case "collections.OrderedDict":
                if (a.length != 0) {
                    throw new Refused("collections.OrderedDict is called with arguments");
                }
                return new LinkedHashMap<Object, Object>();
            case "_codecs.encode":
                // protocol 2 spells bytes as encode(latin-1 text, 'latin1')
                if (a.length != 2 || !(a[0] instanceof String) || !"latin1".equals(a[1])) {
                    throw new Refused("_codecs.encode is called other than as (text, 'latin1')");
                }
                return ((String) a[0]).getBytes(StandardCharsets.ISO_8859_1);
            default:
                throw new Refused(name + " cannot be called");
        }
    }

    private static Dtype dtype(Object[] a) {
        if (a.length < 1 || !(a[0] instanceof String)) {
            throw new Refused("numpy.dtype is called without a type code");
        }
        String code = (String) a[0];
        if (code.length() < 2 || !Character.isDigit(code.charAt(1))) {
            throw new Refused("numpy.dtype(" + code + ") is not a plain numeric type");
        }
        return new Dtype(code.charAt(0), Integer.parseInt(code.substring(1)));
    }

    private static void build(Object target, Object state) {
        Object[] s = state instanceof Object[] ? (Object[]) state : null;
        if (target instanceof Dtype && s != null && s.length >= 2) {
            String order = String.valueOf(s[1]);
            if (s.length > 3 && (s[2] != null || s[3] != null)) {
                throw new Refused("a structured or sub-array numpy dtype is not a weight type");
            }
            ((Dtype) target).order =
                    ">".equals(order) ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
        } else if (target instanceof PendingArray && s != null && s.length == 5) {
            ((PendingArray) target).array = array(s);
        } else {
            throw new Refused("the pickle sets the state of a " + kind(target));
        }
    }

    private static NumpyArray array(Object[] s) {
        if (!(s[1] instanceof Object[]) || !(s[2] instanceof Dtype)) {
            throw new Refused("a numpy array's state has no shape or dtype");
        }
        if (Boolean.TRUE.equals(s[3])) {
            throw new Refused(
                    "a numpy array is in Fortran order; Paddle saves C-ordered arrays");
        }
        if (!(s[4] instanceof byte[])) {
            throw new Refused("a numpy array holds " + kind(s[4]) + " rather than raw bytes");
        }
        Object[] dims = (Object[]) s[1];
        long[] shape = new long[dims.length];
        long count = 1;
        for (int i = 0; i < dims.length; i++) {
            if (!(dims[i] instanceof Number) || ((Number) dims[i]).longValue() < 0) {
                throw new Refused("a numpy array has an invalid dimension " + dims[i]);
            }
            shape[i] = ((Number) dims[i]).longValue();
            count *= shape[i];
        }
        Dtype dtype = (Dtype) s[2];
        byte[] data = (byte[]) s[4];
        if (count * dtype.itemSize != data.length) {
            throw new Refused(
                    "a numpy array of shape "
                            + java.util.Arrays.toString(shape)
                            + " and dtype "
                            + dtype.kind
                            + dtype.itemSize
                            + " holds "
                            + data.length
                            + " bytes instead of "
                            + count * dtype.itemSize);
        }
        return new NumpyArray(dtype.kind, dtype.itemSize, dtype.order, shape, data);
    }

    private static String kind(Object o) {
        if (o == null) {
            return "None";
        }
        if (o instanceof Global) {
            return "global " + ((Global) o).name;
        }
        if (o instanceof Map || o instanceof List || o instanceof Object[]) {
            return "container";
        }
        return o.getClass().getSimpleName();
    }
}
