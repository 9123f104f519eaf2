package org.peft4j.parallel.comm;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.PointerByReference;

import org.peft4j.core.io.NativeArrays;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * Collectives over Open MPI for CPU tensors, on the tensors' own memory (no per-element Java loops,
 * no copies for contiguous tensors). Processes are started by {@code mpirun -np N java ...}; rank
 * and size come from MPI itself.
 *
 * <p>Open MPI's handles are the addresses of its global objects ({@code MPI_COMM_WORLD} is {@code
 * &ompi_mpi_comm_world}, {@code MPI_FLOAT} is {@code &ompi_mpi_float}, ...), so the library is
 * loaded with {@code RTLD_GLOBAL}, which its plugins also need. A float16 array is gathered and
 * broadcast as bytes; it cannot be summed (MPI has no half type).
 */
public final class MpiCommunicator implements Communicator {

    private static final int RTLD_NOW_GLOBAL = 0x2 | 0x100;
    private static final Pointer IN_PLACE = new Pointer(1);

    private static MpiCommunicator world;

    private final Backend mpi;
    private final Pointer comm;
    private final boolean isWorld;
    private final int rank;
    private final int size;
    private boolean closed;

    /** The loaded library and its handles, shared by every communicator of the process. */
    private static final class Backend {
        final MpiLibrary lib;
        final NativeLibrary symbols;

        Backend(MpiLibrary lib, NativeLibrary symbols) {
            this.lib = lib;
            this.symbols = symbols;
        }

        Pointer handle(String symbol) {
            return symbols.getGlobalVariableAddress(symbol);
        }
    }

    private MpiCommunicator(Backend mpi, Pointer comm, boolean isWorld) {
        this.mpi = mpi;
        this.comm = comm;
        this.isWorld = isWorld;
        IntByReference value = new IntByReference();
        check(mpi.lib.MPI_Comm_rank(comm, value), "MPI_Comm_rank");
        this.rank = value.getValue();
        check(mpi.lib.MPI_Comm_size(comm, value), "MPI_Comm_size");
        this.size = value.getValue();
    }

    /**
     * Returns the world communicator, initialising MPI on first use.
     *
     * @return the communicator of every process that {@code mpirun} started
     * @throws IllegalStateException if Open MPI's library cannot be loaded (the message says what
     *     to install)
     */
    public static synchronized MpiCommunicator world() {
        if (world == null || world.closed) {
            Backend backend = load();
            IntByReference flag = new IntByReference();
            backend.lib.MPI_Finalized(flag);
            if (flag.getValue() != 0) {
                throw new IllegalStateException("MPI was already finalised in this process");
            }
            backend.lib.MPI_Initialized(flag);
            if (flag.getValue() == 0) {
                backend.lib.MPI_Init(null, null);
            }
            world = new MpiCommunicator(backend, backend.handle("ompi_mpi_comm_world"), true);
            Runtime.getRuntime().addShutdownHook(new Thread(MpiCommunicator::finalizeWorld));
        }
        return world;
    }

    private static synchronized void finalizeWorld() {
        if (world != null) {
            world.close();
        }
    }

    private static Backend load() {
        String configured = System.getProperty("peft4j.mpi.library");
        // libmpi.so comes with the -dev package; the runtime package has only the versioned name
        String[] names =
                configured != null
                        ? new String[] {configured}
                        : new String[] {"mpi", "libmpi.so.40"};
        Map<String, Object> options = Map.of(Library.OPTION_OPEN_FLAGS, RTLD_NOW_GLOBAL);
        UnsatisfiedLinkError last = null;
        for (String name : names) {
            try {
                MpiLibrary lib = Native.load(name, MpiLibrary.class, options);
                return new Backend(lib, NativeLibrary.getInstance(name, options));
            } catch (UnsatisfiedLinkError e) {
                last = e;
            }
        }
        throw new IllegalStateException(
                "cannot load Open MPI's libmpi ("
                        + last.getMessage()
                        + "); install it (Debian: apt-get install openmpi-bin libopenmpi-dev),"
                        + " or name the library with -Dpeft4j.mpi.library=PATH, and start the"
                        + " processes with mpirun",
                last);
    }

    /** {@inheritDoc} */
    @Override
    public int getRank() {
        return rank;
    }

    /** {@inheritDoc} */
    @Override
    public int getWorldSize() {
        return size;
    }

    /** {@inheritDoc} */
    @Override
    public void allReduceSum(NDArray array) {
        checkOpen();
        Pointer type = type(array.getDataType(), true);
        try (ArrayMemory memory = ArrayMemory.of(array, true)) {
            check(
                    mpi.lib.MPI_Allreduce(
                            IN_PLACE,
                            memory.pointer(),
                            count(array),
                            type,
                            mpi.handle("ompi_mpi_op_sum"),
                            comm),
                    "MPI_Allreduce");
        }
    }

    /** {@inheritDoc} */
    @Override
    public NDArray allGather(NDArray array, int axis) {
        checkOpen();
        Shape shape = array.getShape();
        int dim = GatherLayout.axis(shape, axis);
        boolean bytes = array.getDataType() == DataType.FLOAT16;
        Pointer type = type(array.getDataType(), false);
        int count = bytes ? (int) (array.size() * 2) : count(array);
        NDArray gathered;
        try (ArrayMemory send = ArrayMemory.of(array, false)) {
            gathered =
                    NativeArrays.create(
                            array.getManager(),
                            GatherLayout.stacked(shape, size),
                            array.getDataType(),
                            target ->
                                    check(
                                            mpi.lib.MPI_Allgather(
                                                    send.pointer(),
                                                    count,
                                                    type,
                                                    Native.getDirectBufferPointer(target),
                                                    count,
                                                    type,
                                                    comm),
                                            "MPI_Allgather"));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return GatherLayout.alongAxis(gathered, shape, dim);
    }

    /** {@inheritDoc} */
    @Override
    public void broadcast(NDArray array, int root) {
        checkOpen();
        if (root < 0 || root >= size) {
            throw new IllegalArgumentException("root " + root + " outside [0, " + size + ")");
        }
        boolean bytes = array.getDataType() == DataType.FLOAT16;
        try (ArrayMemory memory = ArrayMemory.of(array, true)) {
            check(
                    mpi.lib.MPI_Bcast(
                            memory.pointer(),
                            bytes ? (int) (array.size() * 2) : count(array),
                            type(array.getDataType(), false),
                            root,
                            comm),
                    "MPI_Bcast");
        }
    }

    /** {@inheritDoc} */
    @Override
    public void barrier() {
        checkOpen();
        check(mpi.lib.MPI_Barrier(comm), "MPI_Barrier");
    }

    /** {@inheritDoc} */
    @Override
    public Communicator split(int color, int key) {
        checkOpen();
        PointerByReference sub = new PointerByReference();
        check(mpi.lib.MPI_Comm_split(comm, color, key, sub), "MPI_Comm_split");
        return new MpiCommunicator(mpi, sub.getValue(), false);
    }

    /** {@inheritDoc} */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (isWorld) {
            IntByReference flag = new IntByReference();
            mpi.lib.MPI_Finalized(flag);
            if (flag.getValue() == 0) {
                mpi.lib.MPI_Finalize();
            }
        } else {
            mpi.lib.MPI_Comm_free(new PointerByReference(comm));
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("this MPI communicator is closed");
        }
    }

    private static int count(NDArray array) {
        long n = array.size();
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(
                    "MPI counts are ints: an array of " + n + " elements must be split first");
        }
        return (int) n;
    }

    private Pointer type(DataType type, boolean reduce) {
        switch (type) {
            case FLOAT32:
                return mpi.handle("ompi_mpi_float");
            case FLOAT64:
                return mpi.handle("ompi_mpi_double");
            case INT32:
                return mpi.handle("ompi_mpi_int");
            case INT64:
                return mpi.handle("ompi_mpi_long_long_int");
            case INT8:
                return mpi.handle("ompi_mpi_signed_char");
            case UINT8:
                return mpi.handle("ompi_mpi_unsigned_char");
            case BOOLEAN:
                if (reduce) {
                    throw new IllegalArgumentException(
                            "cannot sum boolean arrays; convert them to int32 first");
                }
                return mpi.handle("ompi_mpi_byte");
            case FLOAT16:
                if (reduce) {
                    throw new IllegalArgumentException(
                            "MPI cannot sum float16 arrays; convert them to float32 first");
                }
                return mpi.handle("ompi_mpi_byte");
            default:
                throw new IllegalArgumentException("MPI collectives do not support " + type);
        }
    }

    private void check(int code, String call) {
        if (code != 0) {
            byte[] text = new byte[512];
            IntByReference length = new IntByReference();
            mpi.lib.MPI_Error_string(code, text, length);
            throw new IllegalStateException(
                    call
                            + " failed on rank "
                            + rank
                            + ": "
                            + new String(text, 0, length.getValue(), StandardCharsets.UTF_8));
        }
    }
}
