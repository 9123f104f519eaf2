package org.peft4j.core.io.paddle;

import net.razorvine.pickle.PickleException;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Reads what {@code paddle.save} writes for a state dict ({@code .pdparams}): a pickle (protocol
 * 2 to 4, 4 by default) of a dict from parameter name to numpy array, plus Paddle's {@code
 * "StructuredToParameterName@@"} table of internal names, which is dropped.
 *
 * <p>A pickle is a program; this one runs under {@link RestrictedUnpickler}: the only globals it
 * may name are numpy's array and dtype reconstruction, {@code collections.OrderedDict} and (for
 * protocol 2's bytes) {@code _codecs.encode}, each built by this package's own code. Any other
 * global is refused before it is imported or called.
 */
public final class PickleStateReader {

    /** The key under which {@code paddle.save} stores its table of internal names. */
    public static final String NAME_TABLE = "StructuredToParameterName@@";

    /** The key {@code paddle.save} adds when it cut arrays over 4 GiB (protocols 2 and 3). */
    public static final String BIG_PARAM_INFO = "UnpackBigParamInfor@@";

    private PickleStateReader() {}

    /**
     * Reads a state dict.
     *
     * @param file a {@code .pdparams} file
     * @return an ordered, unmodifiable map from parameter name to array, in file order
     * @throws java.nio.file.NoSuchFileException if the file does not exist
     * @throws PickleFormatException if the file is truncated, malformed, names a global other than
     *     the allowed ones, or is not a flat dict of arrays; the message names the file
     * @throws IOException if the file cannot be read
     */
    public static Map<String, NumpyArray> read(Path file) throws IOException {
        Object root;
        try (InputStream in = new BufferedInputStream(Files.newInputStream(file));
                RestrictedUnpicklerScope scope = new RestrictedUnpicklerScope()) {
            root = scope.unpickler.load(in);
        } catch (RestrictedUnpickler.Refused e) {
            throw new PickleFormatException(file, e.getMessage() + "; refusing the file");
        } catch (PickleException | IOException | ClassCastException | IndexOutOfBoundsException e) {
            if (e instanceof java.nio.file.NoSuchFileException) {
                throw (IOException) e;
            }
            throw new PickleFormatException(
                    file,
                    "is truncated or not a pickle that paddle.save wrote ("
                            + e.getMessage()
                            + "); copy the file again",
                    e);
        }
        return flatten(file, root);
    }

    private static Map<String, NumpyArray> flatten(Path file, Object root)
            throws PickleFormatException {
        if (!(root instanceof Map)) {
            throw new PickleFormatException(
                    file, "holds a " + describe(root) + ", not a state dict (name -> array)");
        }
        Map<String, NumpyArray> out = new LinkedHashMap<>();
        for (Map.Entry<?, ?> entry : ((Map<?, ?>) root).entrySet()) {
            Object key = entry.getKey();
            if (NAME_TABLE.equals(key)) {
                continue;
            }
            if (BIG_PARAM_INFO.equals(key)) {
                throw new PickleFormatException(
                        file,
                        "holds arrays over 4 GiB cut in slices (" + BIG_PARAM_INFO + "); resave"
                                + " it with paddle.save(..., protocol=4)");
            }
            Object value = entry.getValue();
            // Paddle 2.1 pickled a tensor as (name, array)
            if (value instanceof Object[] && ((Object[]) value).length == 2) {
                value = ((Object[]) value)[1];
            }
            if (!(key instanceof String)
                    || !(value instanceof RestrictedUnpickler.PendingArray)
                    || ((RestrictedUnpickler.PendingArray) value).array == null) {
                throw new PickleFormatException(
                        file,
                        "entry "
                                + key
                                + " is a "
                                + describe(value)
                                + ", not a numpy array; only flat state dicts are read");
            }
            out.put((String) key, ((RestrictedUnpickler.PendingArray) value).array);
        }
        return Collections.unmodifiableMap(out);
    }

    private static String describe(Object o) {
        return o == null ? "None" : o.getClass().getSimpleName();
    }

    /** Closes the unpickler's memo with the stream. */
    private static final class RestrictedUnpicklerScope implements AutoCloseable {
        final RestrictedUnpickler unpickler = new RestrictedUnpickler();

        @Override
        public void close() {
            unpickler.close();
        }
    }
}
