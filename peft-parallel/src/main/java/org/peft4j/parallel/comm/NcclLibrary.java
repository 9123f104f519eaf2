package org.peft4j.parallel.comm;

import com.sun.jna.Library;
import com.sun.jna.Pointer;
import com.sun.jna.Structure;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.PointerByReference;

/**
 * The functions of NCCL's C API that {@link NcclCommunicator} calls, bound with JNA. Counts are
 * {@code size_t} (a Java long on 64-bit Linux); streams and communicators are opaque pointers.
 */
public interface NcclLibrary extends Library {

    /** {@code ncclSum}. */
    int SUM = 0;

    /** {@code ncclUniqueId}: 128 opaque bytes that rank 0 creates and every rank needs. */
    @Structure.FieldOrder("internal")
    class UniqueId extends Structure {

        /** The bytes. */
        public byte[] internal = new byte[128];

        /** Creates an empty id. */
        public UniqueId() {}

        /** The id passed by value, as {@code ncclCommInitRank} takes it. */
        public static class ByValue extends UniqueId implements Structure.ByValue {

            /** Creates an empty id. */
            public ByValue() {}
        }

        /**
         * Returns a copy of the bytes.
         *
         * @return 128 bytes
         */
        public byte[] bytes() {
            read();
            return internal.clone();
        }

        /**
         * Returns the id with the given bytes, to pass by value.
         *
         * @param bytes 128 bytes
         * @return the id
         */
        public static ByValue of(byte[] bytes) {
            ByValue id = new ByValue();
            System.arraycopy(bytes, 0, id.internal, 0, id.internal.length);
            id.write();
            return id;
        }
    }

    /**
     * {@code ncclGetUniqueId}.
     *
     * @param uniqueId receives the id
     * @return an {@code ncclResult_t}
     */
    int ncclGetUniqueId(UniqueId uniqueId);

    /**
     * {@code ncclCommInitRank}.
     *
     * @param comm receives the communicator
     * @param nranks the number of ranks
     * @param commId rank 0's unique id
     * @param rank this rank
     * @return an {@code ncclResult_t}
     */
    int ncclCommInitRank(PointerByReference comm, int nranks, UniqueId.ByValue commId, int rank);

    /**
     * {@code ncclAllReduce}.
     *
     * @param sendbuff device memory
     * @param recvbuff device memory (the same for in place)
     * @param count elements
     * @param datatype an {@code ncclDataType_t}
     * @param op an {@code ncclRedOp_t}
     * @param comm the communicator
     * @param stream the CUDA stream, null for the legacy default stream
     * @return an {@code ncclResult_t}
     */
    int ncclAllReduce(
            Pointer sendbuff,
            Pointer recvbuff,
            long count,
            int datatype,
            int op,
            Pointer comm,
            Pointer stream);

    /**
     * {@code ncclAllGather}.
     *
     * @param sendbuff device memory of {@code sendcount} elements
     * @param recvbuff device memory of {@code nranks * sendcount} elements
     * @param sendcount elements per rank
     * @param datatype an {@code ncclDataType_t}
     * @param comm the communicator
     * @param stream the CUDA stream, null for the legacy default stream
     * @return an {@code ncclResult_t}
     */
    int ncclAllGather(
            Pointer sendbuff,
            Pointer recvbuff,
            long sendcount,
            int datatype,
            Pointer comm,
            Pointer stream);

    /**
     * {@code ncclBroadcast}.
     *
     * @param sendbuff device memory on the root
     * @param recvbuff device memory (the same for in place)
     * @param count elements
     * @param datatype an {@code ncclDataType_t}
     * @param root the sending rank
     * @param comm the communicator
     * @param stream the CUDA stream, null for the legacy default stream
     * @return an {@code ncclResult_t}
     */
    int ncclBroadcast(
            Pointer sendbuff,
            Pointer recvbuff,
            long count,
            int datatype,
            int root,
            Pointer comm,
            Pointer stream);

    /**
     * {@code ncclCommSplit} (NCCL 2.18 and later).
     *
     * @param comm the communicator to split
     * @param color the group to join
     * @param key the order within it
     * @param newcomm receives the new communicator
     * @param config null for defaults
     * @return an {@code ncclResult_t}
     */
    int ncclCommSplit(Pointer comm, int color, int key, PointerByReference newcomm, Pointer config);

    /**
     * {@code ncclCommUserRank}.
     *
     * @param comm the communicator
     * @param rank receives this process's rank in it
     * @return an {@code ncclResult_t}
     */
    int ncclCommUserRank(Pointer comm, IntByReference rank);

    /**
     * {@code ncclCommCount}.
     *
     * @param comm the communicator
     * @param count receives the number of ranks
     * @return an {@code ncclResult_t}
     */
    int ncclCommCount(Pointer comm, IntByReference count);

    /**
     * {@code ncclCommDestroy}.
     *
     * @param comm the communicator
     * @return an {@code ncclResult_t}
     */
    int ncclCommDestroy(Pointer comm);

    /**
     * {@code ncclGetErrorString}.
     *
     * @param result an {@code ncclResult_t}
     * @return its description
     */
    String ncclGetErrorString(int result);
}
