package org.peft4j.parallel.comm;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.PointerByReference;

/**
 * Collectives over NCCL for CUDA tensors, on the tensors' device memory (no host copies).
 *
 * <p>NCCL and the CUDA runtime are loaded when the first communicator is created, not before, so
 * this class costs nothing where there is no GPU. Operations are enqueued on the legacy default
 * stream of the current device, the stream libtorch computes on when nobody sets another (DJL does
 * not), so they are ordered after the kernels that produced their inputs and before those that read
 * their outputs, without a host synchronisation.
 *
 * <p>Every rank drives one GPU: rank 0 creates NCCL's unique id and a bootstrap communicator (Open
 * MPI's, for example) gives it to every rank. What has run where: this class is tested on a machine
 * without a GPU, against a recording stand-in for NCCL (argument checks, the id exchange, error
 * reporting) and for its failure without NCCL or a device; it has not run on a GPU.
 */
public final class NcclCommunicator implements Communicator {

    private static final int UNIQUE_ID_BYTES = 128;

    private final NcclLibrary nccl;
    private final CudaRuntime cuda;
    private final com.sun.jna.Pointer comm;
    private final int rank;
    private final int size;
    private final int device;
    private boolean closed;

    private NcclCommunicator(
            NcclLibrary nccl,
            CudaRuntime cuda,
            com.sun.jna.Pointer comm,
            int rank,
            int size,
            int device) {
        this.nccl = nccl;
        this.cuda = cuda;
        this.comm = comm;
        this.rank = rank;
        this.size = size;
        this.device = device;
    }

    /**
     * Creates the communicator of the ranks of a bootstrap communicator, this rank driving one GPU.
     * A collective: every rank of {@code bootstrap} calls it.
     *
     * @param bootstrap the ranks, and the channel for NCCL's unique id (CPU tensors)
     * @param gpu the index of this rank's GPU
     * @return the communicator
     * @throws IllegalStateException if NCCL or the CUDA runtime cannot be loaded, or there is no
     *     such CUDA device (the message says what to do)
     */
    public static NcclCommunicator create(Communicator bootstrap, int gpu) {
        return create(bootstrap, gpu, NativeLibraries.nccl(), NativeLibraries.cuda());
    }

    /**
     * Creates the communicator of every process a launcher started, each driving the GPU of its
     * local rank, with Open MPI as the bootstrap.
     *
     * @return the communicator
     * @throws IllegalStateException as {@link #create(Communicator, int)}
     */
    public static NcclCommunicator fromEnvironment() {
        return create(Communicators.fromEnvironment(), LaunchEnvironment.current().getLocalRank());
    }

    static NcclCommunicator create(
            Communicator bootstrap, int gpu, NcclLibrary nccl, CudaRuntime cuda) {
        IntByReference count = new IntByReference();
        int status = cuda.cudaGetDeviceCount(count);
        if (status != 0 || count.getValue() == 0) {
            throw new IllegalStateException(
                    "NCCL needs a CUDA device per rank but none is visible"
                            + (status != 0 ? " (" + cuda.cudaGetErrorString(status) + ")" : "")
                            + "; on CPUs use MpiCommunicator (Communicators.fromEnvironment())");
        }
        if (gpu < 0 || gpu >= count.getValue()) {
            throw new IllegalArgumentException(
                    "GPU "
                            + gpu
                            + " does not exist: "
                            + count.getValue()
                            + " CUDA devices are visible; start at most that many ranks per host");
        }
        checkCuda(cuda, cuda.cudaSetDevice(gpu), "cudaSetDevice(" + gpu + ")");
        NcclLibrary.UniqueId id = new NcclLibrary.UniqueId();
        if (bootstrap.getRank() == 0) {
            checkNccl(nccl, nccl.ncclGetUniqueId(id), "ncclGetUniqueId", 0);
        }
        byte[] bytes = exchange(bootstrap, id.bytes());
        PointerByReference comm = new PointerByReference();
        checkNccl(
                nccl,
                nccl.ncclCommInitRank(
                        comm,
                        bootstrap.getWorldSize(),
                        NcclLibrary.UniqueId.of(bytes),
                        bootstrap.getRank()),
                "ncclCommInitRank",
                bootstrap.getRank());
        return new NcclCommunicator(
                nccl, cuda, comm.getValue(), bootstrap.getRank(), bootstrap.getWorldSize(), gpu);
    }

    /** Sends rank 0's id to every rank through the bootstrap communicator. */
    private static byte[] exchange(Communicator bootstrap, byte[] id) {
        try (NDManager manager = NDManager.newBaseManager(Device.cpu())) {
            NDArray message =
                    manager.create(id, new Shape(UNIQUE_ID_BYTES)).toType(DataType.UINT8, true);
            bootstrap.broadcast(message, 0);
            return message.toByteArray();
        }
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

    /**
     * Returns the index of the GPU this rank drives.
     *
     * @return the CUDA device index
     */
    public int getDevice() {
        return device;
    }

    /** {@inheritDoc} */
    @Override
    public void allReduceSum(NDArray array) {
        int type = type(checkArray(array), true);
        try (DeviceMemory memory = DeviceMemory.of(array, true)) {
            check(
                    nccl.ncclAllReduce(
                            memory.pointer(),
                            memory.pointer(),
                            array.size(),
                            type,
                            NcclLibrary.SUM,
                            comm,
                            null),
                    "ncclAllReduce");
        }
    }

    /** {@inheritDoc} */
    @Override
    public NDArray allGather(NDArray array, int axis) {
        int type = type(checkArray(array), false);
        Shape shape = array.getShape();
        int dim = GatherLayout.axis(shape, axis);
        NDArray gathered =
                array.getManager()
                        .zeros(
                                GatherLayout.stacked(shape, size),
                                array.getDataType(),
                                array.getDevice());
        try (DeviceMemory send = DeviceMemory.of(array, false);
                DeviceMemory receive = DeviceMemory.of(gathered, false)) {
            check(
                    nccl.ncclAllGather(
                            send.pointer(), receive.pointer(), array.size(), type, comm, null),
                    "ncclAllGather");
        }
        return GatherLayout.alongAxis(gathered, shape, dim);
    }

    /** {@inheritDoc} */
    @Override
    public void broadcast(NDArray array, int root) {
        int type = type(checkArray(array), false);
        if (root < 0 || root >= size) {
            throw new IllegalArgumentException("root " + root + " outside [0, " + size + ")");
        }
        try (DeviceMemory memory = DeviceMemory.of(array, true)) {
            check(
                    nccl.ncclBroadcast(
                            memory.pointer(),
                            memory.pointer(),
                            array.size(),
                            type,
                            root,
                            comm,
                            null),
                    "ncclBroadcast");
        }
    }

    /**
     * {@inheritDoc}
     *
     * <p>NCCL has no barrier: this sums one integer on the device and waits for the stream.
     */
    @Override
    public void barrier() {
        checkOpen();
        try (NDManager manager = NDManager.newBaseManager(Device.gpu(device))) {
            allReduceSum(manager.zeros(new Shape(1), DataType.INT32));
        }
        checkCuda(cuda, cuda.cudaStreamSynchronize(null), "cudaStreamSynchronize");
    }

    /** {@inheritDoc} */
    @Override
    public Communicator split(int color, int key) {
        checkOpen();
        PointerByReference sub = new PointerByReference();
        check(nccl.ncclCommSplit(comm, color, key, sub, null), "ncclCommSplit");
        IntByReference subRank = new IntByReference();
        IntByReference subSize = new IntByReference();
        check(nccl.ncclCommUserRank(sub.getValue(), subRank), "ncclCommUserRank");
        check(nccl.ncclCommCount(sub.getValue(), subSize), "ncclCommCount");
        return new NcclCommunicator(
                nccl, cuda, sub.getValue(), subRank.getValue(), subSize.getValue(), device);
    }

    /** {@inheritDoc} */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            check(nccl.ncclCommDestroy(comm), "ncclCommDestroy");
        }
    }

    private DataType checkArray(NDArray array) {
        checkOpen();
        if (!array.getDevice().isGpu()) {
            throw new IllegalArgumentException(
                    "NCCL collectives need CUDA tensors, got one on "
                            + array.getDevice()
                            + "; use MpiCommunicator for CPU tensors");
        }
        if (array.getDevice().getDeviceId() != device) {
            throw new IllegalArgumentException(
                    "this rank's NCCL communicator drives GPU "
                            + device
                            + " but the tensor is on "
                            + array.getDevice());
        }
        return array.getDataType();
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("this NCCL communicator is closed");
        }
    }

    /**
     * Returns NCCL's {@code ncclDataType_t} for a type.
     *
     * @param type the array's type
     * @param reduce whether the values are summed
     * @return the NCCL type
     * @throws IllegalArgumentException if NCCL cannot move or sum that type
     */
    static int type(DataType type, boolean reduce) {
        switch (type) {
            case INT8:
                return 0;
            case UINT8:
                return 1;
            case INT32:
                return 2;
            case INT64:
                return 4;
            case FLOAT16:
                return 6;
            case FLOAT32:
                return 7;
            case FLOAT64:
                return 8;
            case BOOLEAN:
                if (reduce) {
                    throw new IllegalArgumentException(
                            "cannot sum boolean arrays; convert them to int32 first");
                }
                return 1;
            default:
                throw new IllegalArgumentException("NCCL collectives do not support " + type);
        }
    }

    private void check(int result, String call) {
        checkNccl(nccl, result, call, rank);
    }

    private static void checkNccl(NcclLibrary nccl, int result, String call, int rank) {
        if (result != 0) {
            throw new IllegalStateException(
                    call
                            + " failed on rank "
                            + rank
                            + ": "
                            + nccl.ncclGetErrorString(result)
                            + " (ncclResult_t "
                            + result
                            + "; NCCL_DEBUG=INFO in the environment says more)");
        }
    }

    private static void checkCuda(CudaRuntime cuda, int status, String call) {
        if (status != 0) {
            throw new IllegalStateException(
                    call
                            + " failed: "
                            + cuda.cudaGetErrorString(status)
                            + " (cudaError_t "
                            + status
                            + ')');
        }
    }
}
